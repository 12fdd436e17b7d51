// Drive the official npm `convex` ConvexClient for pytest (see test_convex_clients.py):
// JSON commands on stdin, JSON events on stdout.
//
// Usage: node convex_client.mjs <deployment-url>
// (CONVEX_DRIVER_TRACE=1 also logs every WebSocket frame to stderr.)
//
// Every stdout line is one JSON object with an `event` field; everything the convex client itself
// logs goes to stderr (console.* is redirected), so stdout stays machine-readable.
//
// Commands (one JSON object per stdin line):
//   {"cmd": "subscribe", "name": N, "query": "module:fn", "args": {...}}
//       -> {"event": "update", "name": N, "query": ..., "value": ...} on every new result,
//          {"event": "error", "name": N, "query": ..., "message": ...} when the query fails.
//   {"cmd": "paginate", "name": N, "query": ..., "args": {...}, "initialNumItems": K}
//       (the client's own PaginatedQueryClient, via onPaginatedUpdate_experimental)
//       -> {"event": "update", "name": N, "value": {"results": [...], "status": ...}}
//   {"cmd": "loadMore", "name": N, "numItems": K}  -> {"event": "loadMore", "name": N, "ok": bool}
//   {"cmd": "unsubscribe", "name": N}               -> {"event": "unsubscribed", "name": N}
//   {"cmd": "query", "id": I, "query": ..., "args": {...}}
//       -> {"event": "result", "id": I, "ok": true, "value": ...} or "ok": false, "message"
//   {"cmd": "mutation", "id": I, "mutation": ..., "args": {...},
//    "then": [{"query": ..., "args": {...}}, ...]}
//       -> {"event": "result", "id": I, "ok": true, "value": ...,
//           "current": {name: value of every subscription right when the promise resolved},
//           "then": [values of the follow-up `client.query` calls, in order]}
//   {"cmd": "setAuth", "tokenUrl": U, "secret": S}  client.setAuth(fetchToken), fetchToken
//       POSTing to U with `Authorization: Bearer S` (null when refused)
//       -> {"event": "token", "n": k, "force": bool, "ok": bool, "status"?} per fetch,
//          {"event": "auth", "authenticated": bool} from setAuth's onChange
//   {"cmd": "close"}                                -> {"event": "closed"}, then exit
// Unprompted: {"event": "ready"} at start and
//   {"event": "connection", "connected": bool, "retries": n} when the WebSocket state changes.

import readline from "node:readline";

import { ConvexClient } from "convex/browser";
import { anyApi, getFunctionName } from "convex/server";
import WebSocket from "ws";

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
for (const level of ["log", "info", "warn", "error", "debug"]) {
  console[level] = (...parts) => process.stderr.write(`[convex ${level}] ${parts.join(" ")}\n`);
}

const url = process.argv[2];
if (!url) {
  process.stderr.write("usage: node convex_client.mjs <deployment-url>\n");
  process.exit(2);
}

// "module:fn" (or "dir/module:fn") -> anyApi.module.fn, the reference codegen-less apps use.
function ref(path) {
  const [module, fn = "default"] = path.split(":");
  let node = anyApi;
  for (const part of module.split("/")) node = node[part];
  const reference = node[fn];
  if (getFunctionName(reference) !== `${module}:${fn}`) {
    throw new Error(`anyApi reference for ${path} resolved to ${getFunctionName(reference)}`);
  }
  return reference;
}

const message = (err) => (err instanceof Error ? err.message : String(err));

// CONVEX_DRIVER_TRACE=1 logs every frame (to stderr) for debugging protocol problems.
class TracingWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    this.on("message", (data) => process.stderr.write(`[frame <] ${data}\n`));
  }
  send(data, ...rest) {
    process.stderr.write(`[frame >] ${data}\n`);
    return super.send(data, ...rest);
  }
}
const trace = process.env.CONVEX_DRIVER_TRACE === "1";
const client = new ConvexClient(url, {
  webSocketConstructor: trace ? TracingWebSocket : WebSocket,
});
const subscriptions = new Map(); // name -> unsubscribe function (with getCurrentValue)

let connected = null;
client.subscribeToConnectionState((state) => {
  if (state.isWebSocketConnected !== connected) {
    connected = state.isWebSocketConnected;
    emit({ event: "connection", connected, retries: state.connectionRetries });
  }
});

function currentValues() {
  const out = {};
  for (const [name, sub] of subscriptions) {
    try {
      out[name] = sub.getCurrentValue() ?? null;
    } catch (err) {
      out[name] = { error: message(err) };
    }
  }
  return out;
}

async function handle(cmd) {
  switch (cmd.cmd) {
    case "subscribe": {
      const { name, query } = cmd;
      const unsubscribe = client.onUpdate(
        ref(query),
        cmd.args ?? {},
        (value) => emit({ event: "update", name, query, value: value ?? null }),
        (err) => emit({ event: "error", name, query, message: message(err) }),
      );
      subscriptions.set(name, unsubscribe);
      return;
    }
    case "paginate": {
      const { name, query } = cmd;
      const unsubscribe = client.onPaginatedUpdate_experimental(
        ref(query),
        cmd.args ?? {},
        { initialNumItems: cmd.initialNumItems },
        (value) =>
          emit({
            event: "update",
            name,
            query,
            value: { results: value.results, status: value.status },
          }),
        (err) => emit({ event: "error", name, query, message: message(err) }),
      );
      subscriptions.set(name, unsubscribe);
      return;
    }
    case "loadMore": {
      const current = subscriptions.get(cmd.name)?.getCurrentValue();
      const ok =
        current && typeof current.loadMore === "function" ? current.loadMore(cmd.numItems) : false;
      emit({ event: "loadMore", name: cmd.name, ok: !!ok });
      return;
    }
    case "unsubscribe": {
      subscriptions.get(cmd.name)?.();
      subscriptions.delete(cmd.name);
      emit({ event: "unsubscribed", name: cmd.name });
      return;
    }
    case "query": {
      try {
        const value = await client.query(ref(cmd.query), cmd.args ?? {});
        emit({ event: "result", id: cmd.id, ok: true, value: value ?? null });
      } catch (err) {
        emit({ event: "result", id: cmd.id, ok: false, message: message(err) });
      }
      return;
    }
    case "mutation": {
      let value;
      try {
        value = await client.mutation(ref(cmd.mutation), cmd.args ?? {});
      } catch (err) {
        emit({ event: "result", id: cmd.id, ok: false, message: message(err) });
        return;
      }
      // Read-your-writes: capture the local state synchronously, before anything else runs.
      const current = currentValues();
      const then = [];
      for (const follow of cmd.then ?? []) {
        then.push((await client.query(ref(follow.query), follow.args ?? {})) ?? null);
      }
      emit({ event: "result", id: cmd.id, ok: true, value: value ?? null, current, then });
      return;
    }
    case "setAuth": {
      let fetched = 0;
      const fetchToken = async ({ forceRefreshToken }) => {
        fetched += 1;
        const n = fetched;
        try {
          const response = await fetch(cmd.tokenUrl, {
            method: "POST",
            headers: { Authorization: `Bearer ${cmd.secret}`, "Content-Type": "application/json" },
            body: "{}",
          });
          if (!response.ok) {
            emit({ event: "token", n, force: forceRefreshToken, ok: false, status: response.status });
            return null;
          }
          const body = await response.json();
          emit({ event: "token", n, force: forceRefreshToken, ok: true, expiresAt: body.expiresAt });
          return body.token;
        } catch (err) {
          emit({ event: "token", n, force: forceRefreshToken, ok: false, message: message(err) });
          return null;
        }
      };
      client.setAuth(fetchToken, (authenticated) => emit({ event: "auth", authenticated }));
      return;
    }
    case "close": {
      await client.close();
      emit({ event: "closed" });
      process.exit(0);
    }
    default:
      emit({ event: "bad-command", cmd });
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    emit({ event: "bad-command", line, message: message(err) });
    return;
  }
  handle(cmd).catch((err) => emit({ event: "exception", cmd, message: message(err) }));
});
// The test closing our stdin means it is done with us (or died): do not linger.
lines.on("close", () => {
  client.close().finally(() => process.exit(0));
});

emit({ event: "ready", url });
