// Compile-time checks (`npm run typecheck`, part of `npm test`): the client is typed from
// the OpenAPI document, so each `@ts-expect-error` line below must be a type error — if
// the types loosened, tsc would report the directive as unused and the test run fails.
import { Portwright, createRawClient, type Job } from "../src/index.js";

export async function typed(pw: Portwright): Promise<void> {
  const job: Job = await pw.submit({ adapter: "scrape", input: { url: "http://127.0.0.1/" } });
  const status: string = job.status;
  // @ts-expect-error -- a job has no `colour`
  void job.colour;
  // @ts-expect-error -- `adapter` is required
  await pw.submit({ input: {} });
  // @ts-expect-error -- `priority` is a number
  await pw.submit({ adapter: "scrape", input: {}, priority: "high" });
  // @ts-expect-error -- not an action the API knows
  await pw.decide("esc_1", { action: "explode" });
  const raw = createRawClient({ baseUrl: "http://127.0.0.1:8000", apiKey: "k" });
  // @ts-expect-error -- no such route
  await raw.GET("/v1/nothing-here");
  const me = await raw.GET("/v1/me");
  const scopes: string[] | undefined = me.data?.scopes;
  void status;
  void scopes;
}
