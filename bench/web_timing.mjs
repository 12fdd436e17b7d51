// Timings for bench_web.py: the web app in Debian's Chromium, and the raw npm `convex` client
// in Node (the floor: the same subscriptions with no page, no React, no rendering).
//
//   node bench/web_timing.mjs <mode> '<json config>'
//
// Modes (each prints one JSON object on its last stdout line):
//   browser: {url, bigThreadId, runs, gapMs, appends: {path, lines: [[line, text]...]}}
//       -> {list: [ms...], last: [ms...], append: [ms...]}
//   floor:   same config -> the same three lists, measured with ConvexClient.
//
// Times: navigation → first thread row painted (from the navigation's start), navigation →
// the big thread's last row visible, and append → the appended row visible (from the write,
// wall clock on this machine, to the frame that shows it).

import { appendFileSync } from "node:fs";
import { ConvexClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import WebSocket from "ws";
import { launchChromium } from "../tests/integration/js/chromium.mjs";

const WAIT = 120_000;
const VIEWPORT = { width: 1280, height: 800 };
const RECENT = { includeArchived: false, pinned: false }; // the app's "Recent" list
const PAGE = 40; // the app's first page of history

const threadsList = makeFunctionReference("threads:list");
const threadsGet = makeFunctionReference("threads:get");
const messagesList = makeFunctionReference("messages:list");
const messagesTail = makeFunctionReference("messages:tail");
const BLOCK = 100; // the app's transcript block
const TAIL = 100; // the newest rows the app asks for with a thread

for (const level of ["log", "info", "warn", "error", "debug"]) {
  console[level] = (...parts) => process.stderr.write(`[${level}] ${parts.join(" ")}\n`);
}

// Installed in every page before its scripts run: records, on the frame after they appear,
// when the first history row and any awaited row became visible.
const WATCH = `
(() => {
  const marks = (window.__marks = { list: null, app: null, rows: {} });
  const visible = (el) => {
    const box = el.closest("[data-testid=transcript]")?.getBoundingClientRect();
    const r = el.getBoundingClientRect();
    return !box || (r.bottom > box.top && r.top < box.bottom && r.height > 0);
  };
  const check = () => {
    if (marks.app === null && document.querySelector("#root > *")) marks.app = performance.now();
    if (marks.list === null && document.querySelector("aside#history a[data-thread-link]")) {
      requestAnimationFrame(() => { marks.list ??= performance.now(); });
    }
    for (const text of window.__awaited ?? []) {
      if (marks.rows[text]) continue;
      const row = [...document.querySelectorAll("[data-testid=transcript] .row")].find(
        (r) => r.textContent.includes(text));
      if (row && visible(row)) {
        marks.rows[text] = -1;
        requestAnimationFrame(() => { marks.rows[text] = performance.timeOrigin + performance.now(); });
      }
    }
    const transcript = document.querySelector("[data-testid=transcript]");
    if (window.__waitLast && transcript && marks.last === undefined) {
      const last = Number(transcript.dataset.count) - 1;
      const row = transcript.querySelector('.row[data-idx="' + last + '"]');
      if (row && visible(row) && !document.querySelector(".row-placeholder")) {
        marks.last = null;
        requestAnimationFrame(() => { marks.last = performance.now(); });
      }
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true, characterData: true });
  document.addEventListener("scroll", check, true);
})();
`;

async function browserTimings(config) {
  const browser = await launchChromium();
  const out = { list: [], last: [], append: [] };
  try {
    for (let run = 0; run < config.runs; run++) {
      // A new context each time: nothing cached, as on a first visit.
      const context = await browser.newContext({ viewport: VIEWPORT });
      await context.addInitScript(WATCH);
      const page = await context.newPage();
      await page.goto(config.url, { waitUntil: "commit" });
      await page.waitForFunction(() => window.__marks?.list, null, { timeout: WAIT, polling: 20 });
      out.list.push(await page.evaluate(() => window.__marks.list));
      (out.appStarted ??= []).push(await page.evaluate(() => window.__marks.app));
      if (run === 0) {
        // What the first visit downloads (compressed, as sent): the page, its code and styles.
        await page.waitForLoadState("networkidle");
        out.firstLoad = await page.evaluate(() =>
          performance
            .getEntriesByType("navigation")
            .concat(performance.getEntriesByType("resource"))
            .map((e) => ({ name: new URL(e.name).pathname, bytes: e.encodedBodySize })),
        );
      }
      await context.close();
    }
    for (let run = 0; run < config.runs; run++) {
      const context = await browser.newContext({ viewport: VIEWPORT });
      await context.addInitScript(`window.__waitLast = true;\n${WATCH}`);
      const page = await context.newPage();
      await page.goto(`${config.url}/t/${config.bigThreadId}`, { waitUntil: "commit" });
      await page.waitForFunction(() => window.__marks?.last, null, { timeout: WAIT, polling: 20 });
      out.last.push(await page.evaluate(() => window.__marks.last));
      await context.close();
    }
    const context = await browser.newContext({ viewport: VIEWPORT });
    await context.addInitScript(`window.__waitLast = true;\n${WATCH}`);
    const page = await context.newPage();
    await page.goto(`${config.url}/t/${config.bigThreadId}`, { waitUntil: "commit" });
    await page.waitForFunction(() => window.__marks?.last, null, { timeout: WAIT, polling: 20 });
    for (const [line, text] of config.appends.lines) {
      await page.evaluate((t) => {
        window.__awaited = [t];
      }, text);
      const written = await appendAndStamp(config.appends.path, line);
      await page.waitForFunction((t) => window.__marks.rows[t] > 0, text, { timeout: WAIT, polling: 5 });
      const seen = await page.evaluate((t) => window.__marks.rows[t], text);
      out.append.push(seen - written);
      await page.waitForTimeout(config.gapMs ?? 100);
    }
    await context.close();
  } finally {
    await browser.close();
  }
  return out;
}

function appendAndStamp(path, line) {
  appendFileSync(path, line.endsWith("\n") ? line : line + "\n");
  return performance.timeOrigin + performance.now();
}

function client(url) {
  return new ConvexClient(url, { webSocketConstructor: WebSocket, skipConvexDeploymentUrlCheck: true });
}

function first(c, ref, args, accept = () => true) {
  return new Promise((resolve, reject) => {
    const stop = c.onUpdate(
      ref,
      args,
      (value) => {
        if (!accept(value)) return;
        stop();
        resolve(value);
      },
      reject,
    );
  });
}

function block(threadId, b) {
  return {
    threadId,
    paginationOpts: {
      numItems: BLOCK,
      cursor: b === 0 ? null : String(b * BLOCK - 1),
      endCursor: String((b + 1) * BLOCK - 1),
    },
  };
}

async function floorTimings(config) {
  const out = { list: [], last: [], append: [] };
  for (let run = 0; run < config.runs; run++) {
    const began = performance.now();
    const c = client(config.url);
    await first(c, threadsList, { ...RECENT, paginationOpts: { numItems: PAGE, cursor: null } });
    out.list.push(performance.now() - began);
    await c.close();
  }
  for (let run = 0; run < config.runs; run++) {
    // What the app asks for when it opens a thread: the thread and its newest rows, at once.
    const began = performance.now();
    const c = client(config.url);
    await Promise.all([
      first(c, threadsGet, { id: config.bigThreadId }),
      first(c, messagesTail, { threadId: config.bigThreadId, n: TAIL }, (v) => v.length > 0),
    ]);
    out.last.push(performance.now() - began);
    await c.close();
  }
  const c = client(config.url);
  const thread = await first(c, threadsGet, { id: config.bigThreadId });
  let count = thread.itemCount;
  for (const [line, text] of config.appends.lines) {
    const b = Math.floor(count / BLOCK);
    let subscribed;
    const ready = new Promise((resolve) => {
      subscribed = resolve;
    });
    const seen = new Promise((resolve, reject) => {
      const stop = c.onUpdate(
        messagesList,
        block(config.bigThreadId, b),
        (value) => {
          subscribed();
          if (value.page.some((m) => m.text.includes(text))) {
            stop();
            resolve(performance.timeOrigin + performance.now());
          }
        },
        reject,
      );
    });
    await ready; // the block's subscription has its first result: only the append is timed
    const written = appendAndStamp(config.appends.path, line);
    out.append.push((await seen) - written);
    count += 1;
    await new Promise((r) => setTimeout(r, config.gapMs ?? 100));
  }
  await c.close();
  return out;
}

const [mode, raw] = process.argv.slice(2);
const config = JSON.parse(raw ?? "{}");
const result = mode === "browser" ? await browserTimings(config) : await floorTimings(config);
process.stdout.write(JSON.stringify(result) + "\n");
