// Browser scenarios for pairing, run by tests/integration/test_web_pairing.py against a real
// `sessionbase serve --require-auth` (so that a browser on this machine, too, is nobody until
// it pairs: the "phone" context is as unknown to the server as a real phone would be).
//
//   node pairing.mjs <scenario> '<json config>'
//
// The owner's browser pairs with an admin code from `sessionbase pair`, makes a pairing code
// on its Devices page, and the phone's browser "scans" it: the QR code's pixels are read back
// from the page and decoded with the npm `qr` decoder, and the phone opens the URL they hold.

import { mkdirSync } from "node:fs";
import path from "node:path";
import decodeQR from "qr/decode.js";
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

const APP_READY = "aside#history a[data-thread-link]";
const CREDENTIAL_KEY = "sessionbase.device";

/** Type a code and a name into the pairing screen and send it. */
async function submitPairing(page, code, name) {
  await page.fill("[data-testid=pair-code]", code);
  await page.fill("[data-testid=pair-name]", name);
  await page.click("[data-testid=pair-submit]");
}

/** Pair `page` (showing the pairing screen) and wait until the app is in front. */
async function pairAndEnter(page, code, name) {
  await submitPairing(page, code, name);
  await page.waitForSelector(APP_READY, { state: "attached", timeout: WAIT });
}

/** The URL the pairing QR code on `page` holds: its pixels, drawn on a canvas, decoded. */
async function scanQr(page) {
  const image = await page.evaluate(async () => {
    const svg = document.querySelector("[data-testid=pairing-qr]");
    const source = new XMLSerializer().serializeToString(svg);
    const picture = new Image();
    picture.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(source)}`;
    await picture.decode();
    const side = 400;
    const canvas = document.createElement("canvas");
    canvas.width = side;
    canvas.height = side;
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.drawImage(picture, 0, 0, side, side);
    return { width: side, height: side, data: Array.from(context.getImageData(0, 0, side, side).data) };
  });
  return decodeQR({ width: image.width, height: image.height, data: Uint8Array.from(image.data) });
}

/** Make a pairing code on the owner's Devices page; returns the code shown and the QR's URL. */
async function makeCode(page, { name, admin = false }) {
  await page.waitForSelector("[data-testid=pairing-form]", { timeout: WAIT });
  await page.fill("#pairing-name", name);
  if (admin) await page.check("[data-testid=scope-admin]");
  await page.click("[data-testid=pairing-create]");
  await page.waitForSelector("[data-testid=pairing-card]", { timeout: WAIT });
  const code = (await page.textContent("[data-testid=pairing-code]")).trim();
  const urls = await page.$$eval("[data-testid=pairing-url]", (els) => els.map((el) => el.textContent));
  return { code, urls, scanned: await scanQr(page) };
}

function deviceItem(name) {
  return `[data-testid=device][data-device-name="${name}"]`;
}

const scenarios = {
  /** Owner pairs as admin, shows a code; the phone scans it, pairs, uses the app, is renamed
   * and then revoked by the owner: its session ends and it shows the pairing screen. Then the
   * phone's pairing errors: a used code, the network down, too many attempts. */
  async flow(browser, config) {
    const ownerProblems = new Problems();
    const phoneProblems = new Problems();
    const ownerContext = await newContext(browser, DESKTOP);
    const owner = await open(ownerContext, ownerProblems, `${config.url}/`, "owner");
    await owner.waitForSelector("[data-testid=pair-required]", { timeout: WAIT });
    await pairAndEnter(owner, config.adminCode, "laptop");
    await owner.click('nav a[href="/devices"]');
    const made = await makeCode(owner, { name: "phone" });

    const phoneContext = await newContext(browser, PHONE);
    const urlsSeen = [];
    phoneContext.on("request", (request) => urlsSeen.push(request.url()));
    const phone = await open(phoneContext, phoneProblems, made.scanned, "phone");
    await phone.waitForSelector("[data-testid=pair-page]", { timeout: WAIT });
    const prefilled = await phone.inputValue("[data-testid=pair-code]");
    await phone.fill("[data-testid=pair-name]", "phone");
    await phone.click("[data-testid=pair-submit]");
    await phone.waitForSelector(APP_READY, { state: "attached", timeout: WAIT });
    const phoneAt = new URL(phone.url()).pathname + new URL(phone.url()).search;
    const stored = await phone.evaluate((key) => JSON.parse(localStorage.getItem(key)), CREDENTIAL_KEY);
    const phoneNavHasDevices = (await phone.$('nav a[href="/devices"]')) !== null;

    // The owner's list shows the new device live; a rename there reaches it too.
    await owner.waitForSelector(deviceItem("phone"), { timeout: WAIT });
    await owner.click(`${deviceItem("phone")} [data-testid=device-rename]`);
    await owner.fill(`${deviceItem("phone")} [data-testid=device-rename-input]`, "Pixel phone");
    await owner.press(`${deviceItem("phone")} [data-testid=device-rename-input]`, "Enter");
    await owner.waitForSelector(deviceItem("Pixel phone"), { timeout: WAIT });

    // A device without admin is told plainly on the Devices page.
    await phone.goto(`${config.url}/devices`);
    await phone.waitForSelector("[data-testid=devices-forbidden]", { timeout: WAIT });
    const forbidden = (await phone.textContent("[data-testid=devices-forbidden]")).replace(/\s+/g, " ");
    await phone.goto(`${config.url}/`);
    await phone.waitForSelector(APP_READY, { state: "attached", timeout: WAIT });
    const problemsBeforeRevoke = phoneProblems.list.length;

    // Revoke from the owner's page: the phone notices and shows the pairing screen.
    await phone.evaluate(() => {
      const seen = () => {
        if (document.querySelector("[data-testid=session-ended]")) {
          window.sessionEndedAt = Date.now();
          return true;
        }
        return false;
      };
      new MutationObserver((_, observer) => seen() && observer.disconnect()).observe(document, {
        childList: true,
        subtree: true,
      });
    });
    await owner.click(`${deviceItem("Pixel phone")} [data-testid=device-revoke]`);
    await owner.waitForSelector("[data-testid=revoke-dialog]", { timeout: WAIT });
    const revokedAt = Date.now();
    await owner.click("[data-testid=revoke-confirm]");
    await phone.waitForSelector("[data-testid=session-ended]", { timeout: WAIT });
    const endedAfterMs = (await phone.evaluate(() => window.sessionEndedAt)) - revokedAt;
    const ended = (await phone.textContent("[data-testid=session-ended]")).replace(/\s+/g, " ");
    const forgotten = await phone.evaluate((key) => localStorage.getItem(key), CREDENTIAL_KEY);
    await owner.waitForSelector(`${deviceItem("Pixel phone")}[data-revoked]`, { timeout: WAIT });
    const ownerStillIn = (await owner.$("[data-testid=pair-page]")) === null;

    // The pairing screen's errors, each in words a person can act on.
    const errors = {};
    const errorText = async () => {
      await phone.waitForFunction(
        () => document.querySelector("[data-testid=pair-error]")?.textContent.trim(),
        null,
        { timeout: WAIT },
      );
      const text = (await phone.textContent("[data-testid=pair-error]")).trim();
      await phone.evaluate(() => (document.querySelector("[data-testid=pair-error]").textContent = ""));
      return text;
    };
    await submitPairing(phone, made.code, "phone again");
    errors.used = await errorText();
    await phone.route("**/auth/pair", (route) => route.abort("internetdisconnected"));
    await submitPairing(phone, "ZZZZ-ZZZZ", "phone again");
    errors.offline = await errorText();
    await phone.unroute("**/auth/pair");
    for (let attempt = 0; attempt < 10 && !errors.limited; attempt++) {
      await submitPairing(phone, "ZZZZ-ZZZZ", "phone again");
      const text = await errorText();
      if (/Too many attempts/.test(text)) errors.limited = text;
    }
    errors.button = (await phone.textContent("[data-testid=pair-submit]")).trim();
    errors.buttonDisabled = await phone.isDisabled("[data-testid=pair-submit]");

    // Past ten live codes the owner's page shows the server's refusal in its own words.
    const ownerProblemsBefore = ownerProblems.list.length;
    let refusal = "";
    for (let made = 0; made < 12 && !refusal; made++) {
      if (await owner.$("[data-testid=pairing-again]")) await owner.click("[data-testid=pairing-again]");
      await owner.click("[data-testid=pairing-create]");
      await owner.waitForFunction(
        () =>
          document.querySelector("[data-testid=pairing-card]") ||
          document.querySelector(".pairing-form .pairing-error")?.textContent.trim(),
        null,
        { timeout: WAIT },
      );
      refusal = (await owner.$(".pairing-form .pairing-error"))
        ? (await owner.textContent(".pairing-form .pairing-error")).trim()
        : "";
    }
    errors.tooManyCodes = refusal;
    // The Convex client logs a failed mutation to the console itself.
    const ownerUnexpected = ownerProblems.list.filter(
      (problem, i) => i < ownerProblemsBefore || !/console error: \[CONVEX M\(pairing:create\)\]/.test(problem),
    );

    // After the revocation only the refusals provoked on purpose may show up.
    const expected = /\/auth\/(pair|token)|ERR_INTERNET_DISCONNECTED|Failed to load resource/;
    const phoneUnexpected = phoneProblems.list.filter(
      (problem, i) => i < problemsBeforeRevoke || !expected.test(problem),
    );
    const secretInUrls = urlsSeen.filter((url) => url.includes(stored.secret));
    await ownerContext.close();
    await phoneContext.close();
    return {
      made,
      prefilled,
      phoneAt,
      stored: { deviceId: stored.deviceId, name: stored.name, scopes: stored.scopes, hasSecret: !!stored.secret },
      secretInUrls,
      phoneNavHasDevices,
      forbidden,
      endedAfterMs,
      ended,
      forgotten,
      ownerStillIn,
      errors,
      problems: [...ownerUnexpected, ...phoneUnexpected],
    };
  },

  /** The Devices page (the owner's, a code on show, a few devices) and /pair (a phone that
   * opened the QR code's URL) at desktop and phone width: problems, axe, overflow, and
   * screenshots. */
  async pages(browser, config) {
    const problems = new Problems();
    const report = [];
    const shoot = async (page, name, viewport) => {
      await page.waitForLoadState("networkidle").catch(() => {});
      if (config.screenshots) {
        mkdirSync(config.screenshots, { recursive: true });
        await page.screenshot({ path: path.join(config.screenshots, `${name}-${viewport}.png`) });
      }
      report.push({
        page: name,
        viewport,
        overflow: await horizontalOverflow(page),
        violations: await axeViolations(page),
      });
    };
    const desktop = await newContext(browser, DESKTOP);
    const owner = await open(desktop, problems, `${config.url}/pair?code=${config.adminCode}`, "owner");
    await owner.fill("[data-testid=pair-name]", "laptop");
    await owner.click("[data-testid=pair-submit]");
    await owner.waitForSelector(APP_READY, { state: "attached", timeout: WAIT });
    await owner.goto(`${config.url}/devices`);
    await owner.waitForSelector(`${deviceItem("laptop")}`, { timeout: WAIT });
    const made = await makeCode(owner, { name: "tablet" });
    await shoot(owner, "devices", "desktop");

    // The same owner at phone width (its credential copied into a phone-sized context).
    const ownerPhone = await browser.newContext({
      viewport: PHONE,
      deviceScaleFactor: 1,
      reducedMotion: "reduce",
      storageState: await desktop.storageState(),
    });
    const small = await open(ownerPhone, problems, `${config.url}/devices`, "owner@phone");
    await small.waitForSelector(`${deviceItem("laptop")}`, { timeout: WAIT });
    await makeCode(small, { name: "tablet" });
    await shoot(small, "devices", "phone");

    for (const [name, viewport] of [
      ["desktop", DESKTOP],
      ["phone", PHONE],
    ]) {
      const context = await newContext(browser, viewport);
      const page = await open(context, problems, made.scanned, `pair@${name}`);
      await page.waitForSelector("[data-testid=pair-page]", { timeout: WAIT });
      await page.fill("[data-testid=pair-name]", name === "phone" ? "Pixel 8" : "Work laptop");
      await shoot(page, "pair", name);
      await context.close();
    }
    await ownerPhone.close();
    await desktop.close();
    return { report, problems: problems.list };
  },
};

await runScenario(scenarios);
