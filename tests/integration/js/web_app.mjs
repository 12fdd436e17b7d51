// Browser scenarios for the web app, run by tests/integration/test_web_app.py against a real
// `sessionbase serve` (Debian's Chromium under playwright-core).
//
//   node web_app.mjs <scenario> '<json config>'
//
// The config always has `url` (the server); each scenario reads what else it needs. A
// scenario prints one JSON object on its last stdout line, or exits non-zero with the reason.
// Every page opened through `open()` is watched: console errors, uncaught exceptions, failed
// requests and HTTP errors are collected and reported in `problems`.

import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { launchChromium } from "./chromium.mjs";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const WAIT = 20_000; // ms: how long any one expected thing may take to show
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

class Problems {
  constructor() {
    this.list = [];
  }
  watch(page, label) {
    page.on("console", (msg) => {
      if (msg.type() === "error") this.list.push(`${label}: console error: ${msg.text()}`);
    });
    page.on("pageerror", (err) => this.list.push(`${label}: uncaught: ${err.message}`));
    page.on("requestfailed", (req) => {
      const reason = req.failure()?.errorText ?? "";
      // A navigation away aborts what the old page still had in flight; that is not a failure.
      if (reason === "net::ERR_ABORTED") return;
      this.list.push(`${label}: request failed: ${req.url()} ${reason}`);
    });
    page.on("response", (res) => {
      if (res.status() >= 400) this.list.push(`${label}: HTTP ${res.status()} for ${res.url()}`);
    });
  }
}

async function newContext(browser, viewport) {
  return browser.newContext({ viewport, deviceScaleFactor: 1, reducedMotion: "reduce" });
}

async function open(context, problems, url, label) {
  const page = await context.newPage();
  problems.watch(page, label);
  await page.goto(url, { waitUntil: "domcontentloaded" });
  return page;
}

/** The ids of the thread links in the history drawer, in order. */
async function drawerThreadIds(page) {
  return page.$$eval("aside#history a[data-thread-link]", (links) =>
    links.map((a) => a.getAttribute("data-thread-id")),
  );
}

async function axeViolations(page) {
  // Evaluated through the DevTools protocol: the page's CSP (rightly) refuses inline scripts.
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
    }));
  });
}

async function horizontalOverflow(page) {
  return page.evaluate(() => {
    const doc = document.documentElement;
    return {
      scrollWidth: Math.max(doc.scrollWidth, document.body.scrollWidth),
      clientWidth: doc.clientWidth,
    };
  });
}

// ------------------------------------------------------------------------------ scenarios

const scenarios = {
  /** The drawer on the start page: which threads it lists. */
  async drawer(browser, config) {
    const problems = new Problems();
    const context = await newContext(browser, DESKTOP);
    const page = await open(context, problems, config.url, "drawer");
    await page.waitForSelector("aside#history a[data-thread-link]", { timeout: WAIT });
    if (config.expectCount) {
      await page.waitForFunction(
        (n) => document.querySelectorAll("aside#history a[data-thread-link]").length >= n,
        config.expectCount,
        { timeout: WAIT },
      );
    }
    const ids = await drawerThreadIds(page);
    const status = await page.textContent(".status-pill");
    await context.close();
    return { ids, status, problems: problems.list };
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

const [name, rawConfig] = process.argv.slice(2);
const scenario = scenarios[name];
if (!scenario) {
  console.error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
const browser = await launchChromium();
try {
  const result = await scenario(browser, JSON.parse(rawConfig ?? "{}"));
  process.stdout.write(JSON.stringify(result) + "\n");
} finally {
  await browser.close();
}
