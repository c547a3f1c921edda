/**
 * The Portwright API from TypeScript and Node (20+).
 *
 * Two layers, both typed from the API's OpenAPI document (`src/schema.ts`, generated):
 *
 * - `Portwright`: the common calls (submit, read, wait, events, control, escalations,
 *   portals) returning the answer's body, throwing `PortwrightError` on a 4xx/5xx;
 * - `portwright.raw`: an `openapi-fetch` client over every route of the document, for
 *   anything else (`raw.GET("/v1/usage")`), with the key and the base URL already set.
 *
 * ```ts
 * import { Portwright } from "portwright-client";
 * const pw = new Portwright({ baseUrl: "http://127.0.0.1:8000", apiKey: process.env.PW_KEY! });
 * const job = await pw.submit({ adapter: "scrape", input: { url: "https://example.org" } });
 * const done = await pw.waitFor(job.id);
 * ```
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };
export type Schemas = components["schemas"];
export type Job = Schemas["Job"];
export type JobSubmit = Schemas["JobSubmit"];
export type JobList = Schemas["JobList"];
export type Event = Schemas["Event"];
export type EventList = Schemas["EventList"];
export type ErrorBody = Schemas["ErrorBody"];
export type Escalation = Schemas["Escalation"];
export type EscalationList = Schemas["EscalationList"];
export type DecisionRequest = Schemas["DecisionRequest"];
export type DecisionResult = Schemas["DecisionResult"];
export type Portal = Schemas["Portal"];
export type RawClient = Client<paths>;

/** The states a job ends in: `waitFor` returns once the job's status is one of these. */
export const FINISHED = ["succeeded", "failed", "cancelled"] as const;

export interface ClientOptions {
  /** The gateway, e.g. `http://127.0.0.1:8000` (no trailing `/v1`). */
  baseUrl: string;
  /** An API key (`portwright keys create --tenant NAME`). */
  apiKey: string;
  /** A `fetch` to use instead of the global one (tests, proxies). */
  fetch?: typeof globalThis.fetch;
}

export interface CallOptions {
  /** Sent as `Idempotency-Key`: a retried call with the same key is answered once. */
  idempotencyKey?: string;
}

/** A 4xx or 5xx answer: its status, and the API's error body (`code`, `message`, `fields`). */
export class PortwrightError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fields: Schemas["FieldProblem"][];
  readonly known: string[] | undefined;
  readonly requestId: string | null;

  constructor(status: number, body: Partial<ErrorBody> | undefined, requestId: string | null) {
    const code = body?.code ?? `http_${status}`;
    super(`${status} ${code}: ${body?.message ?? "no error body"}`);
    this.name = "PortwrightError";
    this.status = status;
    this.code = code;
    this.fields = body?.fields ?? [];
    this.known = body?.known ?? undefined;
    this.requestId = requestId;
  }
}

/** The typed `openapi-fetch` client over every route, authenticated with `apiKey`. */
export function createRawClient(options: ClientOptions): RawClient {
  if (!options.baseUrl) throw new TypeError("baseUrl: required, e.g. http://127.0.0.1:8000");
  if (!options.apiKey) throw new TypeError("apiKey: required (portwright keys create --tenant NAME)");
  const raw = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const auth: Middleware = {
    onRequest({ request }) {
      request.headers.set("authorization", `Bearer ${options.apiKey}`);
      return request;
    },
  };
  raw.use(auth);
  return raw;
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

function unwrap<T>(answer: Answer<T>): T {
  const { data, error, response } = answer;
  if (!response.ok || error !== undefined) {
    const body = (error && typeof error === "object" ? error : undefined) as Partial<ErrorBody> | undefined;
    throw new PortwrightError(response.status, body, response.headers.get("x-request-id"));
  }
  return data as T;
}

function idempotency(options?: CallOptions): { "Idempotency-Key"?: string } {
  return options?.idempotencyKey ? { "Idempotency-Key": options.idempotencyKey } : {};
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export class Portwright {
  /** Every route of the API, typed (`raw.GET("/v1/usage")`). */
  readonly raw: RawClient;

  constructor(options: ClientOptions) {
    this.raw = createRawClient(options);
  }

  // -- jobs --------------------------------------------------------------------------

  /** Submit a job (202): the job as queued. */
  async submit(body: JobSubmit, options?: CallOptions): Promise<Job> {
    return unwrap(await this.raw.POST("/v1/jobs", { body, params: { header: idempotency(options) } }));
  }

  async job(jobId: string): Promise<Job> {
    return unwrap(await this.raw.GET("/v1/jobs/{job_id}", { params: { path: { job_id: jobId } } }));
  }

  async jobs(query: operations["list_jobs_v1_jobs_get"]["parameters"]["query"] = {}): Promise<JobList> {
    return unwrap(await this.raw.GET("/v1/jobs", { params: { query } }));
  }

  /** The job's timeline: every transition and control event, oldest first. */
  async events(jobId: string): Promise<EventList> {
    return unwrap(await this.raw.GET("/v1/jobs/{job_id}/events", { params: { path: { job_id: jobId } } }));
  }

  /** Poll until the job has finished (or `timeoutMs` passes: then a TimeoutError). */
  async waitFor(jobId: string, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<Job> {
    const deadline = Date.now() + (options.timeoutMs ?? 120_000);
    let delay = options.intervalMs ?? 200;
    for (;;) {
      const job = await this.job(jobId);
      if ((FINISHED as readonly string[]).includes(job.status)) return job;
      if (Date.now() >= deadline) {
        const error = new Error(`job ${jobId} still ${job.status} (${job.state}) after the deadline`);
        error.name = "TimeoutError";
        throw error;
      }
      await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
      delay = Math.min(delay * 1.5, 2_000);
    }
  }

  async cancel(jobId: string, reason = "", options?: CallOptions): Promise<Job> {
    return unwrap(
      await this.raw.POST("/v1/jobs/{job_id}/cancel", {
        params: { path: { job_id: jobId }, header: idempotency(options) },
        body: reason ? { reason } : null,
      }),
    );
  }

  /** Deliver an input the job waits for (`job.wait_for_input(name)`), e.g. a one-time code. */
  async provideInput(jobId: string, name: string, value: unknown, options?: CallOptions): Promise<Job> {
    return unwrap(
      await this.raw.POST("/v1/jobs/{job_id}/input", {
        params: { path: { job_id: jobId }, header: idempotency(options) },
        body: { name, value } as Schemas["InputRequest"],
      }),
    );
  }

  // -- escalations -------------------------------------------------------------------

  async escalations(
    query: operations["list_escalations_v1_escalations_get"]["parameters"]["query"] = {},
  ): Promise<EscalationList> {
    return unwrap(await this.raw.GET("/v1/escalations", { params: { query } }));
  }

  /** Decide an escalation (operator scope); a conflicting decision is a 409 naming who decided. */
  async decide(escalationId: string, body: DecisionRequest, options?: CallOptions): Promise<DecisionResult> {
    return unwrap(
      await this.raw.POST("/v1/escalations/{escalation_id}/decide", {
        params: { path: { escalation_id: escalationId }, header: idempotency(options) },
        body,
      }),
    );
  }

  // -- portals -----------------------------------------------------------------------

  /** Cool a portal down for `seconds` from now (operator scope; audited). */
  async extendCooldown(name: string, seconds: number, reason = ""): Promise<Portal> {
    return unwrap(
      await this.raw.POST("/v1/portals/{name}/cooldown", { params: { path: { name } }, body: { seconds, reason } }),
    );
  }

  /** End a portal's cooldown now: its jobs go on within 10 s (admin scope; audited). */
  async endCooldown(name: string, reason = ""): Promise<Portal> {
    return unwrap(
      await this.raw.POST("/v1/portals/{name}/cooldown/end", {
        params: { path: { name } },
        body: reason ? { reason } : null,
      }),
    );
  }
}
