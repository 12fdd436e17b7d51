// What every browser scenario of the web app shares: contexts at desktop and phone width,
// pages watched for problems (console errors, uncaught exceptions, failed requests, HTTP
// errors), axe, the horizontal-overflow check, and the main that runs one named scenario.
//
//   node <script>.mjs <scenario> '<json config>'  -> one JSON object on the last stdout line

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { launchChromium } from "./chromium.mjs";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
export const WAIT = 20_000; // ms: how long any one expected thing may take to show
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export class Problems {
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

export async function newContext(browser, viewport) {
  return browser.newContext({ viewport, deviceScaleFactor: 1, reducedMotion: "reduce" });
}

export async function open(context, problems, url, label) {
  const page = await context.newPage();
  problems.watch(page, label);
  await page.goto(url, { waitUntil: "domcontentloaded" });
  return page;
}

export async function axeViolations(page) {
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

export async function horizontalOverflow(page) {
  return page.evaluate(() => {
    const doc = document.documentElement;
    return {
      scrollWidth: Math.max(doc.scrollWidth, document.body.scrollWidth),
      clientWidth: doc.clientWidth,
    };
  });
}

/** Run the scenario named on the command line with its JSON config; print its result. */
export async function runScenario(scenarios) {
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
}
