// A real Portwright stack for the client's tests: `portwright up` (gateway and workers,
// no sandbox) on a loopback port over a throwaway SQLite database, an API key made with
// `portwright keys create`, and a loopback HTTP page for jobs to fetch. Waits use
// deadlines, never fixed sleeps; `stop()` ends only the processes started here.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const PORTWRIGHT = process.env.PORTWRIGHT_BIN || join(root, ".venv", "bin", "portwright");
export const PAGE_TITLE = "Portwright node client page";

function freePort() {
  return new Promise((done, fail) => {
    const server = createNetServer();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

async function until(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

function portwright(args, env) {
  const run = spawnSync(PORTWRIGHT, args, { env, encoding: "utf8", timeout: 120_000 });
  if (run.status !== 0) {
    throw new Error(`portwright ${args.join(" ")} failed (${run.status}):\n${run.stderr}\n${run.stdout}`);
  }
  return run.stdout;
}

export async function startStack() {
  const dir = mkdtempSync(join(tmpdir(), "portwright-node-"));
  const page = createServer((request, response) => {
    if (request.url === "/robots.txt") {
      response.writeHead(200, { "content-type": "text/plain" }).end("User-agent: *\nAllow: /\n");
      return;
    }
    response
      .writeHead(200, { "content-type": "text/html; charset=utf-8" })
      .end(`<html><head><title>${PAGE_TITLE}</title></head><body><h1>hello</h1></body></html>`);
  });
  await new Promise((done) => page.listen(0, "127.0.0.1", done));
  const pagePort = page.address().port;
  const port = await freePort();
  const env = {
    ...process.env,
    PORTWRIGHT_DATA_DIR: join(dir, "data"),
    PORTWRIGHT_DATABASE_URL: `sqlite:///${join(dir, "app.sqlite")}`,
    PORTWRIGHT_URL_ALLOWLIST: JSON.stringify([`127.0.0.1:${pagePort}`]),
    PORTWRIGHT_MASTER_KEY: "node-client-tests-" + "x".repeat(32),
    PORTWRIGHT_CHROMIUM: "none",
    PORTWRIGHT_WORKER_ID: `node-${process.pid}`,
  };
  delete env.PORTWRIGHT_REDIS_URL;
  portwright(["migrate"], env);
  const key = portwright(["keys", "create", "--tenant", "node-client"], env).trim().split("\n").pop();
  const server = spawn(PORTWRIGHT, ["up", "--no-sandbox", "--host", "127.0.0.1", "--port", String(port)], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  server.stdout.on("data", (chunk) => (output += chunk));
  server.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((done) => server.on("exit", (code) => done(code)));
  const baseUrl = `http://127.0.0.1:${port}`;
  const stack = {
    baseUrl,
    key,
    pageUrl: `http://127.0.0.1:${pagePort}/page`,
    async stop() {
      if (server.exitCode === null) {
        server.kill("SIGTERM");
        const timer = setTimeout(() => server.kill("SIGKILL"), 30_000);
        await exited;
        clearTimeout(timer);
      }
      await new Promise((done) => page.close(done));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await until(
      "the gateway to be ready",
      async () => {
        if (server.exitCode !== null) throw new Error(`portwright up exited ${server.exitCode}:\n${output}`);
        return (await fetch(`${baseUrl}/readyz`)).ok;
      },
      120_000,
    );
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}
