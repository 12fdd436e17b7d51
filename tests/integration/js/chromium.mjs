// Launch Debian's Chromium through the pinned npm `playwright-core` (see tests/support/browser.py).
//
// Playwright's own browser download is never used: the browser is the system package that
// scripts/test installs (`apt-get install chromium`), at /usr/bin/chromium unless
// SESSIONBASE_CHROMIUM names another binary.
//
//   import { launchChromium } from "./chromium.mjs";
//   const browser = await launchChromium();
//   const page = await browser.newPage();

import { chromium } from "playwright-core";

export const CHROMIUM = process.env.SESSIONBASE_CHROMIUM || "/usr/bin/chromium";

// Headless, and nothing that reaches beyond the machine on its own (updates, sync, QUIC probes).
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchChromium(options = {}) {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, ...options });
}

// `node chromium.mjs` checks the setup: it prints {"version": "<Chromium version>"}.
if (import.meta.url === `file://${process.argv[1]}`) {
  const browser = await launchChromium();
  const page = await browser.newPage();
  await page.setContent("<title>ok</title>");
  process.stdout.write(JSON.stringify({ version: browser.version(), title: await page.title() }) + "\n");
  await browser.close();
}
