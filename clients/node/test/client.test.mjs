// The client against a running Portwright stack (see stack.mjs): submit a job, poll it to
// the end, read its events, and the shape of a 4xx error.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";

import { Portwright, PortwrightError, createRawClient } from "../dist/index.js";
import { PAGE_TITLE, startStack } from "./stack.mjs";

let stack;
let pw;

before(async () => {
  stack = await startStack();
  pw = new Portwright({ baseUrl: stack.baseUrl, apiKey: stack.key });
});

after(async () => {
  await stack?.stop();
});

test("a submitted job is polled to success and its output read", async () => {
  const job = await pw.submit({ adapter: "scrape", input: { url: stack.pageUrl, engine: "http" } });
  assert.match(job.id, /^job_/);
  assert.equal(job.adapter, "scrape");
  const done = await pw.waitFor(job.id, { timeoutMs: 90_000 });
  assert.equal(done.status, "succeeded", done.reason ?? "");
  assert.equal(done.output.status, 200);
  assert.match(JSON.stringify(done.output), new RegExp(PAGE_TITLE));
});

test("a job's events are its timeline, oldest first, ending in its final state", async () => {
  const job = await pw.submit({ adapter: "scrape", input: { url: stack.pageUrl, engine: "http" } });
  const done = await pw.waitFor(job.id, { timeoutMs: 90_000 });
  const { data } = await pw.events(job.id);
  assert.ok(data.length >= 3, JSON.stringify(data));
  const seqs = data.map((event) => event.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.equal(data[0].to_state, "INIT");
  assert.equal(data.at(-1).to_state, done.state);
});

test("an idempotency key answers a repeated submit with the same job", async () => {
  const body = { adapter: "scrape", input: { url: stack.pageUrl, engine: "http" } };
  const first = await pw.submit(body, { idempotencyKey: "node-once" });
  const deadline = Date.now() + 30_000;
  let again;
  for (;;) {  // 409 idempotency_in_flight until the first answer is stored (documented)
    try {
      again = await pw.submit(body, { idempotencyKey: "node-once" });
      break;
    } catch (error) {
      if (!(error instanceof PortwrightError) || error.code !== "idempotency_in_flight" || Date.now() > deadline) {
        throw error;
      }
      await new Promise((done) => setTimeout(done, 100));
    }
  }
  assert.equal(again.id, first.id);
});

test("a 4xx is a PortwrightError with the API's status, code, message and fields", async () => {
  await assert.rejects(
    () => pw.submit({ adapter: "no-such-adapter", input: {} }),
    (error) => {
      assert.ok(error instanceof PortwrightError);
      assert.ok(error.status >= 400 && error.status < 500, String(error.status));
      assert.equal(typeof error.code, "string");
      assert.match(error.message, /no-such-adapter/);
      assert.ok(Array.isArray(error.fields));
      assert.ok(error.known?.includes("scrape"), JSON.stringify(error.known));
      return true;
    },
  );
  await assert.rejects(
    () => pw.submit({ adapter: "scrape", input: { url: stack.pageUrl, engine: "warp" } }),
    (error) => {
      assert.equal(error.status, 422);
      assert.ok(error.fields.some((f) => f.field.includes("engine")), JSON.stringify(error.fields));
      return true;
    },
  );
  await assert.rejects(() => pw.job("job_does_not_exist"), (error) => error.status === 404);
  const stranger = new Portwright({ baseUrl: stack.baseUrl, apiKey: "pw_not_a_key" });
  await assert.rejects(() => stranger.jobs(), (error) => error.status === 401);
  const plain = await pw.extendCooldown("scrape", 1).catch((error) => error);
  assert.equal(plain.status, 403);  // a jobs-only key: the operator scope is needed
  assert.equal(plain.code, "forbidden");
});

test("the raw client reaches every route of the document, typed and authenticated", async () => {
  const raw = createRawClient({ baseUrl: stack.baseUrl + "/", apiKey: stack.key });
  const { data, error, response } = await raw.GET("/v1/me");
  assert.equal(response.status, 200, JSON.stringify(error));
  assert.equal(data.tenant, "node-client");
});

test("the package is versioned with the API it was generated from", async () => {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  const live = await (await fetch(`${stack.baseUrl}/openapi.json`)).json();
  const committed = JSON.parse(readFileSync(new URL("../openapi.json", import.meta.url), "utf8"));
  assert.equal(pkg.version, live.info.version);
  assert.deepEqual(Object.keys(committed.paths).sort(), Object.keys(live.paths).sort());
});
