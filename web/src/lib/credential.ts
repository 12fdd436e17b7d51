// This browser's device credential, and the two HTTP exchanges that use it: a pairing code
// for a device secret (`POST /auth/pair`), then the secret for short-lived tokens
// (`POST /auth/token`). The secret lives in localStorage (a web page has nowhere safer that
// survives a reload); it travels only in an Authorization header, never in a URL.

export type Credential = {
  deviceId: string;
  secret: string;
  name: string;
  scopes: string[];
};

export type Token = { token: string; expiresAt: number; scopes: string[] };

const STORAGE_KEY = "sessionbase.device";

export function loadCredential(): Credential | null {
  try {
    const raw = window.localStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as Partial<Credential>;
    if (typeof parsed.secret !== "string" || typeof parsed.deviceId !== "string") return null;
    return {
      deviceId: parsed.deviceId,
      secret: parsed.secret,
      name: typeof parsed.name === "string" ? parsed.name : "this device",
      scopes: Array.isArray(parsed.scopes) ? parsed.scopes.map(String) : [],
    };
  } catch {
    return null; // storage blocked or damaged: as if never paired
  }
}

export function saveCredential(credential: Credential): void {
  window.localStorage.setItem(STORAGE_KEY, JSON.stringify(credential));
}

export function clearCredential(): void {
  try {
    window.localStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored, nothing to forget
  }
}

/** Why an exchange failed, in words a person can act on. `kind` says what to do next:
 * `refused` (the code or secret is no good: pair again), `limited` (wait `retryAfter` s),
 * `offline` (the server could not be reached), `bad` (anything else the server said). */
export class ExchangeError extends Error {
  constructor(
    readonly kind: "refused" | "limited" | "offline" | "bad",
    message: string,
    readonly retryAfter = 0,
  ) {
    super(message);
  }
}

async function post(path: string, body: unknown, secret?: string): Promise<unknown> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (secret) headers.Authorization = `Bearer ${secret}`;
  let response: Response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ExchangeError(
      "offline",
      `Cannot reach the server at ${window.location.host}. Check this device's connection (Wi-Fi, VPN, Tailscale) and try again.`,
    );
  }
  const payload = (await response.json().catch(() => null)) as {
    error?: { message?: string };
  } | null;
  if (response.ok) return payload;
  const said = payload?.error?.message ?? `the server answered ${response.status}`;
  if (response.status === 401) throw new ExchangeError("refused", said);
  if (response.status === 429) {
    const retryAfter = Number(response.headers.get("Retry-After")) || 10;
    throw new ExchangeError(
      "limited",
      `Too many attempts: try again in ${retryAfter} s.`,
      retryAfter,
    );
  }
  throw new ExchangeError("bad", said);
}

/** Trade a pairing code for this browser's credential (not yet stored). */
export async function redeemCode(code: string, name: string): Promise<Credential> {
  const paired = (await post("/auth/pair", { code, name })) as {
    deviceId: string;
    secret: string;
    name: string;
    scopes: string[];
  };
  return { deviceId: paired.deviceId, secret: paired.secret, name: paired.name, scopes: paired.scopes };
}

/** A fresh token for the device this secret belongs to. */
export async function fetchDeviceToken(secret: string): Promise<Token> {
  return (await post("/auth/token", {}, secret)) as Token;
}

/** A name for this device the person can accept as it is: "iPhone", "Firefox on Linux". */
export function guessDeviceName(agent: string = navigator.userAgent): string {
  return describeAgent(agent) ?? "Browser";
}

const BROWSERS: [RegExp, string][] = [
  [/Firefox\//, "Firefox"],
  [/Edg\//, "Edge"],
  [/Chrome\//, "Chrome"],
  [/Safari\//, "Safari"],
];
const SYSTEMS: [RegExp, string][] = [
  [/Mac OS X/, "Mac"],
  [/Windows/, "Windows"],
  [/CrOS/, "ChromeOS"],
  [/Linux/, "Linux"],
];

/** "iPhone", "Chrome on Mac" … for a browser's user agent; null when it names none we know. */
export function describeAgent(agent: string): string | null {
  if (/iPhone/.test(agent)) return "iPhone";
  if (/iPad/.test(agent)) return "iPad";
  if (/Android/.test(agent)) return /Mobile/.test(agent) ? "Android phone" : "Android tablet";
  const browser = BROWSERS.find(([pattern]) => pattern.test(agent))?.[1];
  if (!browser) return null;
  const system = SYSTEMS.find(([pattern]) => pattern.test(agent))?.[1];
  return system ? `${browser} on ${system}` : browser;
}
