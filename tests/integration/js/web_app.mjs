// Browser scenarios for the web app, run by tests/integration/test_web_app.py against a real
// `sessionbase serve` (Debian's Chromium under playwright-core).
//
//   node web_app.mjs <scenario> '<json config>'
//
// The config always has `url` (the server); each scenario reads what else it needs. A
// scenario prints one JSON object on its last stdout line, or exits non-zero with the reason.
// Every page opened through `open()` is watched: console errors, uncaught exceptions, failed
// requests and HTTP errors are collected and reported in `problems`.

import { appendFileSync, mkdirSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import {
  DESKTOP,
  PHONE,
  Problems,
  WAIT,
  axeViolations,
  horizontalOverflow,
  newContext,
  open,
  runScenario,
} from "./web_page.mjs";

/** The ids of the thread links in the history drawer, in order. */
async function drawerThreadIds(page) {
  return page.$$eval("aside#history a[data-thread-link]", (links) =>
    links.map((a) => a.getAttribute("data-thread-id")),
  );
}

/** Every row of the open thread's transcript, scrolling it from top to bottom (the list is
 * virtualized: only rows near the viewport exist at any time). */
async function walkTranscript(page, until = null) {
  const rows = new Map();
  await page.evaluate(() => {
    document.querySelector("[data-testid=transcript]").scrollTop = 0;
  });
  for (let guard = 0; guard < 2000; guard++) {
    await page.waitForFunction(
      () => document.querySelectorAll("[data-testid=transcript] .row-placeholder").length === 0,
      null,
      { timeout: WAIT },
    );
    const seen = await page.$$eval("[data-testid=transcript] .row[data-idx]", (elements) =>
      elements.map((row) => ({
        idx: Number(row.dataset.idx),
        kind: row.dataset.kind,
        role: row.dataset.role,
        look: row.querySelector(".act-kind, .act-plan, .callout, .divider, .msg-user, .msg-assistant")?.className ?? "",
        label: row.querySelector(".act-kind")?.textContent ?? "",
        exit: row.querySelector(".badge-ok, .badge-bad")?.textContent?.trim() ?? null,
        text: row.textContent.slice(0, 200),
      })),
    );
    for (const row of seen) rows.set(row.idx, row);
    if (until && (await page.$(until))) break;
    const done = await page.evaluate(() => {
      const el = document.querySelector("[data-testid=transcript]");
      if (el.scrollTop + el.clientHeight >= el.scrollHeight - 2) return true;
      el.scrollTop += Math.max(100, el.clientHeight * 0.7);
      return false;
    });
    if (done) break;
    await page.waitForTimeout(50);
  }
  return [...rows.values()].sort((a, b) => a.idx - b.idx);
}

/** Whether the row for message `idx` is inside the transcript's visible box. */
async function rowInView(page, idx) {
  return page.evaluate((i) => {
    const row = document.querySelector(`[data-testid=transcript] .row[data-idx="${i}"]`);
    const box = document.querySelector("[data-testid=transcript]").getBoundingClientRect();
    if (!row) return false;
    const r = row.getBoundingClientRect();
    return r.bottom > box.top && r.top < box.bottom;
  }, idx);
}

async function openedAt(page, threadId) {
  await page.waitForURL(new RegExp(`/t/${threadId}\\?at=\\d+$`), { timeout: WAIT });
  const at = Number(new URL(page.url()).searchParams.get("at"));
  await page.waitForSelector(`[data-testid=transcript] .row--target[data-idx="${at}"]`, { timeout: WAIT });
  return { at, inView: await rowInView(page, at) };
}

// ------------------------------------------------------------------------------ scenarios

const scenarios = {
  /** The drawer on the start page: which threads it lists. */
  async drawer(browser, config) {
    const problems = new Problems();
    const context = await newContext(browser, DESKTOP);
    const page = await open(context, problems, config.url, "drawer");
    await page.waitForSelector("aside#history a[data-thread-link]", { timeout: WAIT });
    const firstPage = (await drawerThreadIds(page)).length;
    // Scrolling to the end of the list loads the next page, until every thread is there.
    const count = () => page.$$eval("[data-testid=recent] a[data-thread-link]", (links) => links.length);
    for (let guard = 0; guard < 100 && (await count()) < config.expectCount; guard++) {
      await page.evaluate(() => {
        const list = document.querySelector("[data-testid=history-list]");
        list.scrollTop = list.scrollHeight;
      });
      await page.waitForTimeout(100);
    }
    const ids = await drawerThreadIds(page);
    const status = await page.textContent(".status-pill");
    // The pill opens the mirror's details, with who can reach this server.
    await page.click(".status-pill");
    const access = await page.textContent("[data-testid=status-access]", { timeout: WAIT });
    await page.keyboard.press("Escape");
    // A thread's sub-agents fold under it, and open on demand.
    let subagents = null;
    if (config.parentId) {
      const toggle = `[data-testid=recent] li:has(> a[data-thread-id="${config.parentId}"]) .subagents-toggle`;
      const label = await page.textContent(toggle);
      await page.click(toggle);
      const list = `[data-testid=recent] li:has(> a[data-thread-id="${config.parentId}"]) .subagent-list a[data-thread-link]`;
      await page.waitForSelector(list, { timeout: WAIT });
      subagents = { label, ids: await page.$$eval(list, (links) => links.map((a) => a.dataset.threadId)) };
    }
    await context.close();
    return { firstPage, ids, status, access, subagents, problems: problems.list };
  },

  /** `j`/`k` move through the history and open each thread. */
  async keys(browser, config) {
    const problems = new Problems();
    const context = await newContext(browser, DESKTOP);
    const page = await open(context, problems, config.url, "keys");
    await page.waitForSelector("aside#history a[data-thread-link]", { timeout: WAIT });
    const ids = await drawerThreadIds(page);
    const visited = [];
    for (const key of ["j", "j", "k"]) {
      const before = page.url();
      await page.keyboard.press(key);
      await page.waitForURL((url) => url.href !== before && url.pathname.startsWith("/t/"), { timeout: WAIT });
      visited.push(new URL(page.url()).pathname.slice(3));
    }
    await page.keyboard.press("/");
    const focused = await page.evaluate(() => document.activeElement?.id);
    await context.close();
    return { ids, visited, focused, problems: problems.list };
  },

  /** One thread, every row in order, each drawn by its kind. */
  async transcript(browser, config) {
    const problems = new Problems();
    const context = await newContext(browser, DESKTOP);
    const page = await open(context, problems, `${config.url}/t/${config.threadId}`, "transcript");
    await page.waitForSelector("[data-testid=transcript] .row[data-idx]", { timeout: WAIT });
    const lastInView = await page
      .waitForFunction((n) => {
        const row = document.querySelector(`[data-testid=transcript] .row[data-idx="${n}"]`);
        const box = document.querySelector("[data-testid=transcript]")?.getBoundingClientRect();
        if (!row || !box) return false;
        const r = row.getBoundingClientRect();
        return r.bottom > box.top && r.top < box.bottom;
      }, config.lastIdx, { timeout: WAIT })
      .then(() => true, () => false);
    const rows = await walkTranscript(page);
    // A command opens to show its output.
    let output = null;
    if (config.commandIdx !== undefined) {
      const row = `[data-testid=transcript] .row[data-idx="${config.commandIdx}"]`;
      await walkTranscript(page, row);
      await page.click(`${row} .act-head`);
      output = await page.textContent(`${row} .term-output`);
    }
    await context.close();
    return { rows, lastInView, output, problems: problems.list };
  },

  /** Lines appended to the open thread's rollout show up without a reload. */
  async append(browser, config) {
    const problems = new Problems();
    const context = await newContext(browser, DESKTOP);
    const page = await open(context, problems, `${config.url}/t/${config.threadId}`, "append");
    await page.waitForSelector("[data-testid=transcript] .row[data-idx]", { timeout: WAIT });
    await page.waitForFunction(() => document.querySelectorAll(".row-placeholder").length === 0, null, { timeout: WAIT });
    await page.evaluate(() => {
      window.__sessionbaseMarker = "same page";
    });
    appendFileSync(config.path, config.lines.map((line) => line + "\n").join(""));
    const started = Date.now();
    await page.waitForFunction(
      (text) => [...document.querySelectorAll("[data-testid=transcript] .row")].some((row) => row.textContent.includes(text)),
      config.expectText,
      { timeout: WAIT, polling: 10 },
    );
    const latencyMs = Date.now() - started;
    const marker = await page.evaluate(() => window.__sessionbaseMarker);
    const inView = await page.evaluate((text) => {
      const row = [...document.querySelectorAll("[data-testid=transcript] .row")].find((r) => r.textContent.includes(text));
      const box = document.querySelector("[data-testid=transcript]").getBoundingClientRect();
      const r = row.getBoundingClientRect();
      return r.bottom > box.top && r.top < box.bottom;
    }, config.expectText);
    await context.close();
    return { latencyMs, reloaded: marker !== "same page", inView, problems: problems.list };
  },

  /** Rename, pin and archive in one browser; a second browser sees each change live. */
  async mutations(browser, config) {
    const problems = new Problems();
    const contextA = await newContext(browser, DESKTOP);
    const contextB = await newContext(browser, DESKTOP);
    const url = `${config.url}/t/${config.threadId}`;
    const a = await open(contextA, problems, url, "mutations-a");
    const b = await open(contextB, problems, url, "mutations-b");
    for (const page of [a, b]) await page.waitForSelector("[data-testid=thread-title]", { timeout: WAIT });
    const original = await b.textContent("[data-testid=thread-title]");
    const row = `aside#history a[data-thread-id="${config.threadId}"]`;
    const seen = {};

    await a.click("[data-testid=rename]");
    await a.fill("#thread-title-input", config.title);
    await a.press("#thread-title-input", "Enter");
    await b.waitForFunction(
      ([sel, title]) =>
        document.querySelector("[data-testid=thread-title]")?.textContent === title &&
        document.querySelector(sel)?.textContent.includes(title),
      [row, config.title],
      { timeout: WAIT },
    );
    seen.renamed = true;

    await a.click("[data-testid=pin]");
    await b.waitForSelector(`[data-testid=pinned] a[data-thread-id="${config.threadId}"]`, { timeout: WAIT });
    await b.waitForSelector("[data-testid=pin][aria-pressed=true]", { timeout: WAIT });
    seen.pinned = true;

    await a.click("[data-testid=archive]");
    await b.waitForSelector("[data-testid=archive][aria-pressed=true]", { timeout: WAIT });
    await b.waitForFunction((sel) => !document.querySelector(sel), row, { timeout: WAIT });
    seen.archivedHidden = true;

    // Undo it all from the other browser, and see the first one follow.
    await b.click("[data-testid=archive]");
    await b.click("[data-testid=pin]");
    await b.click("[data-testid=rename]");
    await b.fill("#thread-title-input", "");
    await b.press("#thread-title-input", "Enter");
    await a.waitForFunction(
      ([sel, title]) =>
        document.querySelector("[data-testid=thread-title]")?.textContent === title &&
        document.querySelector("[data-testid=pin]")?.getAttribute("aria-pressed") === "false" &&
        document.querySelector("[data-testid=archive]")?.getAttribute("aria-pressed") === "false" &&
        !!document.querySelector(sel) &&
        !document.querySelector("[data-testid=pinned]"),
      [row, original],
      { timeout: WAIT },
    );
    seen.restored = true;
    await contextA.close();
    await contextB.close();
    return { original, seen, problems: problems.list };
  },

  /** The header's type-ahead: a hit opens its thread at the matching row. */
  async typeahead(browser, config) {
    const problems = new Problems();
    const context = await newContext(browser, DESKTOP);
    const page = await open(context, problems, config.url, "typeahead");
    await page.waitForSelector("aside#history a[data-thread-link]", { timeout: WAIT });
    await page.keyboard.press("/");
    await page.keyboard.type(config.q, { delay: 10 });
    const option = `[role=option][data-thread-id="${config.threadId}"]`;
    await page.waitForSelector(option, { timeout: WAIT });
    const snippet = await page.textContent(`${option} .searchbox-hit-snippet`);
    const marked = await page.$$eval(`${option} mark`, (marks) => marks.map((m) => m.textContent));
    await page.click(option);
    const opened = await openedAt(page, config.threadId);
    await context.close();
    return { ...opened, snippet, marked, problems: problems.list };
  },

  /** The search page: results for a query, a hit opens its thread at the matching row. */
  async searchPage(browser, config) {
    const problems = new Problems();
    const context = await newContext(browser, DESKTOP);
    const page = await open(context, problems, `${config.url}/search?${config.query}`, "search");
    const hit = `.result[data-thread-id="${config.threadId}"] a.hit`;
    await page.waitForSelector(hit, { timeout: WAIT });
    const threads = await page.$$eval(".result", (results) => results.map((r) => r.dataset.threadId));
    await page.click(hit);
    const opened = await openedAt(page, config.threadId);
    await context.close();
    return { ...opened, threads, problems: problems.list };
  },

  /** A phone: no page scrolls sideways, and the history opens as a sheet and closes. */
  async phone(browser, config) {
    const problems = new Problems();
    const context = await newContext(browser, PHONE);
    const overflow = [];
    for (const target of config.pages) {
      const page = await open(context, problems, config.url + target.path, `${target.name}@phone`);
      await page.waitForSelector(target.ready, { timeout: WAIT });
      overflow.push({ page: target.name, ...(await horizontalOverflow(page)) });
      await page.close();
    }
    const page = await open(context, problems, `${config.url}/t/${config.threadId}`, "sheet");
    await page.waitForSelector("[data-testid=thread-title]", { timeout: WAIT });
    const hiddenBefore = await page.isHidden("aside#history a[data-thread-link]");
    await page.click("[data-testid=menu]");
    await page.waitForSelector("aside#history.drawer--open a[data-thread-link]", { state: "visible", timeout: WAIT });
    const box = await page.locator("aside#history").boundingBox();
    const links = await page.locator("aside#history a[data-thread-link]").count();
    await page.waitForFunction(() => document.activeElement?.closest("aside#history"), null, { timeout: WAIT });
    const focusedInSheet = await page.evaluate(() => document.activeElement?.getAttribute("aria-current"));
    await page.keyboard.press("Escape");
    await page.waitForSelector("aside#history a[data-thread-link]", { state: "hidden", timeout: WAIT });
    const focusBack = await page.evaluate(() => document.activeElement?.dataset.testid);
    await context.close();
    const sheet = { x: box.x, width: box.width, links, focusedInSheet, focusBack };
    return { overflow, hiddenBefore, sheet, problems: problems.list };
  },

  /** The connection drops (a proxy between page and server cuts every socket and refuses new
   * ones): the header says it is reconnecting; when the server is reachable again the notice
   * goes and the page is live again. */
  async reconnect(browser, config) {
    const target = new URL(config.url);
    const sockets = new Set();
    let accepting = true;
    const proxy = net.createServer((client) => {
      if (!accepting) {
        client.destroy();
        return;
      }
      const upstream = net.connect(Number(target.port), target.hostname);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ]) {
        sockets.add(a);
        a.on("error", () => b.destroy());
        a.on("close", () => {
          sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
    await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const origin = `http://127.0.0.1:${proxy.address().port}`;
    const problems = new Problems();
    const context = await newContext(browser, DESKTOP);
    const page = await open(context, problems, `${origin}/t/${config.threadId}`, "reconnect");
    await page.waitForSelector("[data-testid=thread-title]", { timeout: WAIT });
    const before = await page.isVisible("[data-testid=reconnecting]");

    accepting = false;
    for (const socket of sockets) socket.destroy();
    await page.waitForSelector("[data-testid=reconnecting]", { timeout: WAIT });
    const notice = await page.textContent("[data-testid=reconnecting]");

    accepting = true;
    await page.waitForSelector("[data-testid=reconnecting]", { state: "detached", timeout: 60_000 });
    // Live again: a rename made elsewhere (over the plain JSON API) shows up.
    const rename = (title) =>
      fetch(`${config.url}/v1/mutation/threads:rename`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: config.threadId, title }),
      });
    await rename(config.title);
    await page.waitForFunction(
      (title) => document.querySelector("[data-testid=thread-title]")?.textContent === title,
      config.title,
      { timeout: WAIT },
    );
    await rename(null);
    await context.close();
    proxy.close();
    // The page logs the refused connections while the server is away; nothing else may fail.
    const unexpected = problems.list.filter((p) => !/WebSocket connection to|ERR_CONNECTION|ERR_EMPTY_RESPONSE/.test(p));
    return { before, notice, problems: unexpected };
  },

  /** Every page at desktop and phone width: problems, axe, overflow, screenshots. */
  async pages(browser, config) {
    const problems = new Problems();
    const report = [];
    for (const [name, viewport] of [
      ["desktop", DESKTOP],
      ["phone", PHONE],
    ]) {
      const context = await newContext(browser, viewport);
      for (const target of config.pages) {
        const label = `${target.name}@${name}`;
        const page = await open(context, problems, config.url + target.path, label);
        await page.waitForSelector(target.ready, { timeout: WAIT });
        await page.waitForLoadState("networkidle").catch(() => {});
        if (config.screenshots) {
          mkdirSync(config.screenshots, { recursive: true });
          await page.screenshot({ path: path.join(config.screenshots, `${target.name}-${name}.png`) });
        }
        const overflow = await horizontalOverflow(page);
        const violations = await axeViolations(page);
        report.push({ page: target.name, viewport: name, overflow, violations });
        await page.close();
      }
      await context.close();
    }
    return { report, problems: problems.list };
  },
};

// ------------------------------------------------------------------------------ main

await runScenario(scenarios);
