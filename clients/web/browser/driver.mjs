// Drives Debian's headless Chromium for tests/browser.rs: one line of JSON
// in per step on stdin, one line of JSON out on stdout with its result.
// Every page is a tab of the dev page (`--dev-page`), where the TypeScript
// client (`/partyline.js`) is loaded into `window.t`. The browser is the
// machine's (CHROMIUM, default /usr/bin/chromium): nothing is downloaded.
//
//   {"op":"open","tab":"a"}                        a new tab on PAGE
//   {"op":"eval","tab":"a","js":"..."}             an async function body; its result
//   {"op":"quit"}
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const page = process.env.PAGE;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Root in CI: Chromium's sandbox needs user namespaces it may not have.
  args: ["--no-sandbox", "--disable-gpu"],
});
const context = await browser.newContext();
const tabs = new Map();

// What every tab has: the client, its events kept per client, and helpers.
const SETUP = async () => {
  const partyline = await import("/partyline.js");
  const { url, sha256 } = await (await fetch("/certificate-hashes")).json();
  const t = {
    partyline, url, sha256, clients: {}, events: {}, received: {},
    async connect(name, user, options = {}) {
      const client = await partyline.Client.connect({
        url: options.url ?? url, serverCertificateHashes: sha256,
        identity: { userId: user, username: user + "-name" }, ...options,
      });
      t.clients[name] = client;
      t.events[name] = [];
      t.received[name] = [];
      client.onEvent((event) => {
        if (event.kind === "Data") t.received[name].push(event.data);
        else t.events[name].push(event);
      });
      return client.presence;
    },
    /** The first event of `kind` not yet taken (waiting up to `ms`). */
    async take(name, kind, ms = 10000) {
      const end = Date.now() + ms;
      for (;;) {
        const events = t.events[name];
        const at = events.findIndex((e) => e.kind === kind);
        if (at >= 0) return events.splice(at, 1)[0];
        if (Date.now() > end) throw new Error(`${name}: no ${kind} event; had ${JSON.stringify(events.map((e) => e.kind))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    /** Party data received, waiting until there are `count`. */
    async data(name, count, ms = 10000) {
      const end = Date.now() + ms;
      while (t.received[name].length < count) {
        if (Date.now() > end) {
          const got = t.received[name].map((d) => `${d.reliable ? "reliable" : "datagram"} ${new TextDecoder().decode(d.data)}`);
          const events = t.events[name].map((e) => e.kind + (e.error ? " " + e.error.message : ""));
          throw new Error(`${name}: ${got.length} of ${count} data: ${JSON.stringify(got)}; events ${JSON.stringify(events)}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      return t.received[name].map((d) => ({ ...d, data: new TextDecoder().decode(d.data) }));
    },
    text: (s) => new TextEncoder().encode(s),
  };
  window.t = t;
};


const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const step = JSON.parse(line);
  let answer;
  try {
    if (step.op === "open") {
      const tab = await context.newPage();
      tab.on("console", (message) => process.stderr.write(`[${step.tab}] ${message.text()}\n`));
      await tab.goto(page);
      await tab.evaluate(`(${SETUP.toString()})()`);
      tabs.set(step.tab, tab);
      answer = { ok: null };
    } else if (step.op === "eval") {
      // JSON made in the page: bigints as text, bytes as arrays.
      const text = await tabs.get(step.tab).evaluate(
        `(async () => { const v = await (async () => { ${step.js} })(); return JSON.stringify(v ?? null, (_, x) => typeof x === "bigint" ? x.toString() : x instanceof Uint8Array ? Array.from(x) : x); })()`,
      );
      answer = { ok: JSON.parse(text) };
    } else if (step.op === "quit") {
      break;
    } else {
      answer = { error: `unknown op ${step.op}` };
    }
  } catch (error) {
    // What the tab's clients heard, to tell why.
    let heard = "";
    try {
      heard = await tabs.get(step.tab)?.evaluate(
        "JSON.stringify(window.t?.events ?? {}, (_, x) => typeof x === 'bigint' ? x.toString() : x)",
      );
    } catch {}
    answer = { error: String(error && error.message ? error.message : error) + "\nevents: " + heard };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser.close();
