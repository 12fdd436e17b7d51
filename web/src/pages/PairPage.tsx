import { useEffect, useRef, useState } from "react";
import { Link, useLocation, useSearch } from "wouter";
import { useAccess } from "../lib/access";
import { ExchangeError, guessDeviceName } from "../lib/credential";
import { useTitle } from "../lib/title";

/** What went wrong with a pairing attempt, in words a person can act on. */
function explain(error: unknown): string {
  if (!(error instanceof ExchangeError)) return error instanceof Error ? error.message : String(error);
  switch (error.kind) {
    case "refused":
      return "That code is wrong, used or expired. A code works once, for a few minutes: make a new one and try again.";
    case "limited":
      return `Too many attempts from here: wait ${error.retryAfter} s, then try again.`;
    default:
      return error.message;
  }
}

/** The pairing screen: at /pair (where the QR code leads, the code in its query string), and
 * in place of the app whenever this browser has no access. It trades the code for this
 * device's credential, then carries on into the app. */
export function PairPage() {
  const [access, state] = useAccess();
  const [location, navigate] = useLocation();
  const search = useSearch();
  const [code, setCode] = useState(() => new URLSearchParams(search).get("code") ?? "");
  const [name, setName] = useState(() => guessDeviceName());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [waitUntil, setWaitUntil] = useState(0);
  const [now, setNow] = useState(() => Date.now());
  const codeInput = useRef<HTMLInputElement>(null);
  useTitle("Pair this device");

  useEffect(() => {
    if (waitUntil <= now) return;
    const timer = window.setTimeout(() => setNow(Date.now()), 1000);
    return () => window.clearTimeout(timer);
  }, [waitUntil, now]);
  const waiting = Math.max(0, Math.ceil((waitUntil - now) / 1000));

  useEffect(() => {
    if (!code) codeInput.current?.focus();
    // Only on arrival: typing must not steal focus back.
  }, []);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await access.pair(code.trim(), name.trim());
      // From /pair, on into the app (the code leaves the address bar and history entry).
      if (location === "/pair") navigate("/", { replace: true });
    } catch (failure) {
      setError(explain(failure));
      if (failure instanceof ExchangeError && failure.kind === "limited") {
        setWaitUntil(Date.now() + failure.retryAfter * 1000);
        setNow(Date.now());
      }
      setBusy(false);
    }
  }

  const paired = state.kind === "device" ? state.credential.name : null;
  return (
    <div className="pair-screen">
      <main className="pair-card" data-testid="pair-page">
        <div className="pair-brand" aria-hidden>
          <svg viewBox="0 0 32 32" width="28" height="28">
            <rect width="32" height="32" rx="7" fill="var(--accent)" />
            <path
              d="M9 11.5h14M9 16h10M9 20.5h12"
              stroke="var(--accent-contrast)"
              strokeWidth="2.6"
              strokeLinecap="round"
            />
          </svg>
          <span>sessionbase</span>
        </div>
        <h1>Pair this device</h1>
        {state.kind === "unpaired" && state.reason ? (
          <div className="pair-note pair-note--ended" role="alert" data-testid="session-ended">
            <strong>This device was signed out.</strong> The server said: “{state.reason}”.
          </div>
        ) : null}
        {state.kind === "unpaired" && !state.reason ? (
          <p className="pair-lede" data-testid="pair-required">
            This sessionbase server lets in paired devices only.
          </p>
        ) : null}
        {state.kind !== "unpaired" ? (
          <p className="pair-lede" data-testid="already-paired">
            {paired ? `This browser is paired as “${paired}”.` : "This browser is on the server's own computer, which needs no pairing."}{" "}
            Pairing again gives it a new identity. <Link href="/">Continue to your sessions</Link>
          </p>
        ) : null}
        <p className="pair-how">
          On the computer that runs sessionbase, run <code>sessionbase pair</code> or open{" "}
          <strong>Devices</strong> in its web app, then scan the QR code with this device, or type
          the code below.
        </p>
        <form className="pair-form" onSubmit={submit}>
          <label htmlFor="pair-code">Pairing code</label>
          <input
            id="pair-code"
            ref={codeInput}
            className="pair-input pair-input--code"
            value={code}
            onChange={(event) => setCode(event.target.value.toUpperCase())}
            placeholder="ABCD-EFGH"
            autoComplete="one-time-code"
            autoCapitalize="characters"
            spellCheck={false}
            maxLength={20}
            required
            data-testid="pair-code"
          />
          <label htmlFor="pair-name">Name this device</label>
          <input
            id="pair-name"
            className="pair-input"
            value={name}
            onChange={(event) => setName(event.target.value)}
            maxLength={100}
            autoComplete="off"
            required
            data-testid="pair-name"
          />
          <p className="pair-hint">Shown in the device list, where it can be renamed or revoked.</p>
          <button
            type="submit"
            className="button button--primary pair-submit"
            disabled={busy || waiting > 0 || !code.trim() || !name.trim()}
            data-testid="pair-submit"
          >
            {busy ? "Pairing…" : waiting > 0 ? `Try again in ${waiting} s` : "Pair"}
          </button>
          <div className="pair-error" role="alert" data-testid="pair-error">
            {error}
          </div>
        </form>
        {state.kind === "unpaired" && state.ownerAvailable ? (
          <button
            type="button"
            className="link-button pair-owner"
            onClick={() => access.continueAsOwner()}
            data-testid="continue-as-owner"
          >
            Continue without pairing: this browser is on the server's computer
          </button>
        ) : null}
        <p className="pair-footnote">
          The device keeps its key in this browser's storage; revoking it in the device list
          signs it out at once.
        </p>
      </main>
    </div>
  );
}
