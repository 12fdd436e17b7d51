// A web page tries to read and change what `sessionbase serve` holds, in real Chromium.
// Run by tests/integration/test_cross_origin_browser.py:
//
//   node cross_origin.mjs '{"server": URL, "foreign": URL, "threadId": ID}'
//
// The same attempts run twice: first from a page of the server's own origin (its web app at
// `/`), which must be able to read and rename, then from a page on another loopback port (the
// `foreign` URL, a static server in the test), which must get nothing. Prints one JSON object:
// {"own": {...}, "foreign": {...}}, each the outcome of every attempt.

import { launchChromium } from "./chromium.mjs";

const config = JSON.parse(process.argv[2]);
const SYNC_PATH = "/api/1.31.0/sync";

// Runs inside the page. Every attempt an attacker would make: "simple" text/plain POSTs (no
// preflight) to both HTTP APIs, a JSON POST (preflighted), a read, a text/plain form posted
// into an iframe, and a sync WebSocket that subscribes and mutates.
async function attempts({ target, threadId, title, syncPath }) {
  const out = {};
  const args = JSON.stringify({ id: threadId, title });
  const convex = JSON.stringify({ path: "threads:rename", args: { id: threadId, title } });
  const outcome = async (request) => {
    try {
      const response = await request();
      let body = null;
      try {
        body = await response.text();
      } catch (err) {
        body = `unreadable: ${err}`;
      }
      return { type: response.type, status: response.status, body };
    } catch (err) {
      return { error: String(err) };
    }
  };
  const plain = { "Content-Type": "text/plain" };
  out.textPlainV1 = await outcome(() =>
    fetch(`${target}/v1/mutation/threads:rename`, { method: "POST", mode: "no-cors", headers: plain, body: args }),
  );
  out.textPlainConvex = await outcome(() =>
    fetch(`${target}/api/mutation`, { method: "POST", mode: "no-cors", headers: plain, body: convex }),
  );
  out.jsonPost = await outcome(() =>
    fetch(`${target}/v1/mutation/threads:rename`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: args,
    }),
  );
  out.read = await outcome(() => fetch(`${target}/v1/query/threads:get?args=${encodeURIComponent(JSON.stringify({ id: threadId }))}`));

  // The classic form CSRF: enctype text/plain makes `name=value` read as JSON.
  out.form = await new Promise((resolve) => {
    const sink = document.createElement("iframe");
    sink.name = "sink";
    document.body.append(sink);
    const form = document.createElement("form");
    form.method = "POST";
    form.enctype = "text/plain";
    form.action = `${target}/api/mutation`;
    form.target = "sink";
    const field = document.createElement("input");
    field.name = `${convex.slice(0, -1)},"pad":"`;
    field.value = `"}`;
    form.append(field);
    document.body.append(form);
    const timer = setTimeout(() => resolve({ loaded: false }), 5000);
    sink.onload = () => {
      clearTimeout(timer);
      resolve({ loaded: true });
    };
    form.submit();
  });

  out.ws = await new Promise((resolve) => {
    const seen = { opened: false, messages: [], closeCode: null };
    const ws = new WebSocket(target.replace(/^http/, "ws") + syncPath);
    const finish = () => resolve(seen);
    const timer = setTimeout(() => {
      ws.close();
      finish();
    }, 8000);
    ws.onopen = () => {
      seen.opened = true;
      const send = (msg) => ws.send(JSON.stringify(msg));
      send({ type: "Connect", sessionId: crypto.randomUUID(), connectionCount: 0, lastCloseReason: null, clientTs: Date.now() });
      send({
        type: "ModifyQuerySet",
        baseVersion: 0,
        newVersion: 1,
        modifications: [{ type: "Add", queryId: 0, udfPath: "threads:get", args: [{ id: threadId }] }],
      });
      send({ type: "Mutation", requestId: 0, udfPath: "threads:rename", args: [{ id: threadId, title }] });
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      seen.messages.push(message.type === "Transition" ? JSON.stringify(message).slice(0, 2000) : message.type);
      if (message.type === "MutationResponse") seen.mutation = message.success;
      if (seen.mutation !== undefined && seen.messages.some((m) => m.includes("QueryUpdated"))) {
        clearTimeout(timer);
        ws.close();
        finish();
      }
    };
    ws.onclose = (event) => {
      seen.closeCode = event.code;
      clearTimeout(timer);
      finish();
    };
  });
  return out;
}

const browser = await launchChromium();
try {
  const context = await browser.newContext();
  const own = await context.newPage();
  await own.goto(`${config.server}/`, { waitUntil: "domcontentloaded" });
  const ownResult = await own.evaluate(attempts, {
    target: config.server,
    threadId: config.threadId,
    title: config.ownTitle,
    syncPath: SYNC_PATH,
  });
  const foreign = await context.newPage();
  await foreign.goto(config.foreign, { waitUntil: "domcontentloaded" });
  const foreignResult = await foreign.evaluate(attempts, {
    target: config.server,
    threadId: config.threadId,
    title: config.foreignTitle,
    syncPath: SYNC_PATH,
  });
  process.stdout.write(JSON.stringify({ own: ownResult, foreign: foreignResult, origin: await foreign.evaluate(() => location.origin) }) + "\n");
} finally {
  await browser.close();
}
