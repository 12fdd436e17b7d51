import { useMutation, useQuery } from "convex/react";
import { Laptop, MonitorSmartphone, Pencil, QrCode as QrIcon, ShieldOff, Smartphone, Tablet } from "lucide-react";
import { useEffect, useRef, useState } from "react";
import { type Device, type PairingCode, type Scope, api } from "../api";
import { QrCode } from "../components/QrCode";
import { pageIsLoopback, useAccess } from "../lib/access";
import { describeAgent } from "../lib/credential";
import { ago, dateTime, isoTime } from "../lib/format";
import { useTitle } from "../lib/title";
import "./devices.css";

const GRANTABLE: { scope: Scope; label: string; hint: string }[] = [
  { scope: "read", label: "Read", hint: "threads, search" },
  { scope: "write", label: "Write", hint: "rename, pin, archive" },
  { scope: "admin", label: "Admin", hint: "pair and revoke devices" },
];
const LIFETIMES: [number, string][] = [
  [300, "5 minutes"],
  [600, "10 minutes"],
  [1800, "30 minutes"],
  [3600, "1 hour"],
];

/** What the server said, without the Convex client's framing ("[CONVEX M(pairing:create)]
 * [Request ID: …] Server Error", "Uncaught Error:", "Called by client"). */
function said(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const lines = text
    .split("\n")
    .map((line) => line.replace(/^(\[[^\]]*\]\s*)+/, "").replace(/^(Uncaught )?(Error|ConvexError):\s*/, "").trim())
    .filter((line) => line && !/^(Server Error|Called by client)$/.test(line) && !line.startsWith("at "));
  return lines[0] ?? text;
}

/** Paired devices and new pairings: for admin devices and the owner on the server's computer. */
export function DevicesPage() {
  const [access, state] = useAccess();
  useTitle("Devices");
  if (!access.has("admin")) {
    const scopes = state.kind === "device" ? state.credential.scopes.join(", ") : "none";
    const name = state.kind === "device" ? state.credential.name : "This browser";
    return (
      <div className="page page--center" data-testid="devices-forbidden">
        <h1>Devices need an admin</h1>
        <p className="muted">
          “{name}” may not pair or revoke devices: it holds the scopes {scopes}, not admin. Open
          this page on the computer that runs sessionbase, or on a device paired with the admin
          scope.
        </p>
      </div>
    );
  }
  return (
    <div className="page devices-page">
      <h1>Devices</h1>
      <p className="muted page-lede">
        Each device that opens your sessions from elsewhere pairs once and holds its own key.
        Revoking one signs it out at once.
      </p>
      <NewPairing />
      <DeviceList ownId={state.kind === "device" ? state.credential.deviceId : null} />
    </div>
  );
}

// ------------------------------------------------------------------ a new pairing

type Made = PairingCode & { code: string };

function NewPairing() {
  const create = useMutation(api.createPairing);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Scope[]>(["read", "write"]);
  const [ttl, setTtl] = useState(600);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [made, setMade] = useState<Made | null>(null);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const result = await create({ scopes, ttlSeconds: ttl, ...(name.trim() ? { name: name.trim() } : {}) });
      if (result.code === null) throw new Error("the server did not show the code again: make a new one");
      setMade({ ...result, code: result.code });
    } catch (failure) {
      setError(said(failure));
    } finally {
      setBusy(false);
    }
  }

  const toggle = (scope: Scope) =>
    setScopes((current) =>
      current.includes(scope) ? current.filter((s) => s !== scope) : [...current, scope],
    );

  return (
    <section className="pairing" aria-labelledby="pairing-heading">
      <h2 id="pairing-heading" className="devices-heading">
        Pair a new device
      </h2>
      {made ? (
        <PairingCard made={made} onAgain={() => setMade(null)} />
      ) : (
        <form className="pairing-form" onSubmit={submit} data-testid="pairing-form">
          <div className="pairing-field">
            <label htmlFor="pairing-name">Name (optional)</label>
            <input
              id="pairing-name"
              className="pairing-input"
              value={name}
              onChange={(event) => setName(event.target.value)}
              placeholder="phone"
              maxLength={100}
              autoComplete="off"
            />
          </div>
          <fieldset className="pairing-field pairing-scopes">
            <legend>It may</legend>
            {GRANTABLE.map(({ scope, label, hint }) => (
              <label key={scope} className="pairing-check">
                <input
                  type="checkbox"
                  checked={scopes.includes(scope)}
                  onChange={() => toggle(scope)}
                  data-testid={`scope-${scope}`}
                />
                <span>
                  {label} <span className="muted">({hint})</span>
                </span>
              </label>
            ))}
          </fieldset>
          <div className="pairing-field">
            <label htmlFor="pairing-ttl">Code expires after</label>
            <select
              id="pairing-ttl"
              className="select pairing-input"
              value={ttl}
              onChange={(event) => setTtl(Number(event.target.value))}
            >
              {LIFETIMES.map(([seconds, label]) => (
                <option key={seconds} value={seconds}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <button
            type="submit"
            className="button button--primary"
            disabled={busy || scopes.length === 0}
            data-testid="pairing-create"
          >
            <QrIcon size={16} aria-hidden /> {busy ? "Making a code…" : "Show a pairing code"}
          </button>
          <div className="pairing-error" role="alert">
            {error}
          </div>
        </form>
      )}
    </section>
  );
}

/** The addresses a device may open the pairing page at: the one this page was opened at
 * first when a phone can reach it too (not loopback), then those the server reported. */
function pairingUrls(made: Made): string[] {
  const own = `${window.location.origin}/pair?code=${encodeURIComponent(made.code)}`;
  const urls = made.urls.filter((url) => url !== own);
  return pageIsLoopback() ? [...urls, own] : [own, ...urls];
}

function useNow(every: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), every);
    return () => window.clearInterval(timer);
  }, [every]);
  return now;
}

function PairingCard({ made, onAgain }: { made: Made; onAgain: () => void }) {
  const urls = pairingUrls(made);
  const [chosen, setChosen] = useState(0);
  const now = useNow(1000);
  const left = Math.max(0, Math.round((made.expiresAt - now) / 1000));
  const expired = left === 0;
  const url = urls[Math.min(chosen, urls.length - 1)];
  const reachable = made.urls.length > 0 || !pageIsLoopback();
  return (
    <div className="pairing-card" data-testid="pairing-card" data-expired={expired ? "" : undefined}>
      <div className="pairing-qr">
        <QrCode text={url} label={`QR code of ${url}`} />
        {expired ? <div className="pairing-expired">Expired</div> : null}
      </div>
      <div className="pairing-details">
        <p className="pairing-step">Scan it with the new device's camera, or open the address and type</p>
        <p className="pairing-code" data-testid="pairing-code" aria-label={`Code ${made.code.split("").join(" ")}`}>
          {made.code}
        </p>
        <p className="pairing-expiry" role="timer" aria-live="off" data-testid="pairing-expiry">
          {expired
            ? "This code has expired."
            : `Works once, for ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} more.`}{" "}
          Grants {made.scopes.join(", ")}.
        </p>
        <fieldset className="pairing-urls">
          <legend>Address on the new device</legend>
          {urls.map((candidate, i) => (
            <label key={candidate} className="pairing-url">
              <input type="radio" name="pairing-url" checked={url === candidate} onChange={() => setChosen(i)} />
              <code data-testid="pairing-url">{candidate}</code>
            </label>
          ))}
        </fieldset>
        {!reachable ? (
          <p className="pairing-warning" data-testid="pairing-loopback">
            This server listens on this computer only: another device cannot reach it. Serve it
            on your network (<code>sessionbase serve --host 0.0.0.0</code>) or through{" "}
            <code>tailscale serve</code>, as the README's Devices section shows.
          </p>
        ) : null}
        <div className="pairing-actions">
          <button type="button" className="button" onClick={onAgain} data-testid="pairing-again">
            {expired ? "Make a new code" : "Done"}
          </button>
        </div>
      </div>
    </div>
  );
}

// ------------------------------------------------------------------ the device list

function DeviceList({ ownId }: { ownId: string | null }) {
  const devices = useQuery(api.devices, {});
  const live = devices?.filter((d) => d.revokedAt === null) ?? [];
  const revoked = devices?.filter((d) => d.revokedAt !== null) ?? [];
  return (
    <section aria-labelledby="devices-heading" className="device-section">
      <h2 id="devices-heading" className="devices-heading">
        Paired devices {devices ? <span className="muted">({live.length})</span> : null}
      </h2>
      {devices === undefined ? <p className="muted">Loading…</p> : null}
      {devices && devices.length === 0 ? (
        <p className="muted" data-testid="no-devices">
          No device is paired yet: only this computer can open your sessions.
        </p>
      ) : null}
      <ul role="list" className="device-list" data-testid="devices">
        {[...live, ...revoked].map((device) => (
          <DeviceItem key={device.id} device={device} own={device.id === ownId} />
        ))}
      </ul>
    </section>
  );
}

function DeviceIcon({ device }: { device: Device }) {
  const agent = device.userAgent ?? "";
  if (/iPad|Tablet/.test(agent)) return <Tablet size={18} aria-hidden className="device-icon" />;
  if (/iPhone|Android|Mobile/.test(agent)) return <Smartphone size={18} aria-hidden className="device-icon" />;
  if (agent) return <Laptop size={18} aria-hidden className="device-icon" />;
  return <MonitorSmartphone size={18} aria-hidden className="device-icon" />;
}

function DeviceItem({ device, own }: { device: Device; own: boolean }) {
  const rename = useMutation(api.renameDevice);
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(device.name);
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const revoked = device.revokedAt !== null;

  async function save(event: React.FormEvent) {
    event.preventDefault();
    const name = draft.trim();
    setEditing(false);
    if (!name || name === device.name) return;
    try {
      await rename({ id: device.id, name });
      setError(null);
    } catch (failure) {
      setError(said(failure));
    }
  }

  return (
    <li
      className={`device${revoked ? " device--revoked" : ""}`}
      data-testid="device"
      data-device-id={device.id}
      data-device-name={device.name}
      data-revoked={revoked ? "" : undefined}
    >
      <div className="device-head">
        <DeviceIcon device={device} />
        {editing ? (
          <form className="device-rename" onSubmit={save}>
            <label htmlFor={`rename-${device.id}`} className="visually-hidden">
              New name for {device.name}
            </label>
            <input
              id={`rename-${device.id}`}
              className="pairing-input"
              value={draft}
              maxLength={100}
              autoFocus
              onChange={(event) => setDraft(event.target.value)}
              onKeyDown={(event) => {
                if (event.key === "Escape") {
                  event.preventDefault();
                  event.stopPropagation();
                  setEditing(false);
                }
              }}
              data-testid="device-rename-input"
            />
            <button type="submit" className="button">
              Save
            </button>
          </form>
        ) : (
          <h3 className="device-name" data-testid="device-name">
            {device.name}
          </h3>
        )}
        {own ? <span className="chip chip-accent">this device</span> : null}
      </div>
      <div className="device-scopes" aria-label="Scopes">
        {device.scopes.map((scope) => (
          <span key={scope} className="chip">
            {scope}
          </span>
        ))}
      </div>
      <dl className="device-facts">
        {revoked ? (
          <>
            <dt>Revoked</dt>
            <dd>
              <time dateTime={isoTime(device.revokedAt)}>{dateTime(device.revokedAt)}</time>
            </dd>
          </>
        ) : null}
        <dt>Last seen</dt>
        <dd>
          {device.lastSeenAt ? (
            <time dateTime={isoTime(device.lastSeenAt)} title={dateTime(device.lastSeenAt)}>
              {ago(device.lastSeenAt)}
            </time>
          ) : (
            "never"
          )}
          {device.lastIp ? <> from <code>{device.lastIp}</code></> : null}
        </dd>
        <dt>Paired</dt>
        <dd>
          <time dateTime={isoTime(device.createdAt)}>{dateTime(device.createdAt)}</time>
        </dd>
        {device.userAgent ? (
          <>
            <dt>Browser</dt>
            <dd className="device-agent" title={device.userAgent}>
              {describeAgent(device.userAgent) ?? device.userAgent}
            </dd>
          </>
        ) : null}
      </dl>
      {error ? (
        <p className="pairing-error" role="alert">
          {error}
        </p>
      ) : null}
      {revoked ? null : (
        <div className="device-actions">
          <button
            type="button"
            className="button"
            onClick={() => {
              setDraft(device.name);
              setEditing(true);
            }}
            aria-label={`Rename ${device.name}`}
            data-testid="device-rename"
          >
            <Pencil size={14} aria-hidden /> Rename
          </button>
          <button
            type="button"
            className="button button--danger"
            onClick={() => setConfirming(true)}
            aria-label={`Revoke ${device.name}`}
            data-testid="device-revoke"
          >
            <ShieldOff size={14} aria-hidden /> Revoke
          </button>
        </div>
      )}
      {confirming ? (
        <ConfirmRevoke device={device} own={own} onDone={() => setConfirming(false)} onError={setError} />
      ) : null}
    </li>
  );
}

function ConfirmRevoke({
  device,
  own,
  onDone,
  onError,
}: {
  device: Device;
  own: boolean;
  onDone: () => void;
  onError: (message: string) => void;
}) {
  const revoke = useMutation(api.revokeDevice);
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);

  async function confirm() {
    setBusy(true);
    try {
      await revoke({ id: device.id });
    } catch (failure) {
      onError(said(failure));
    }
    onDone();
  }

  return (
    <dialog
      ref={dialog}
      className="confirm"
      aria-labelledby={`revoke-${device.id}`}
      onCancel={onDone}
      data-testid="revoke-dialog"
    >
      <h2 id={`revoke-${device.id}`} className="confirm-title">
        Revoke “{device.name}”?
      </h2>
      <p>
        It is signed out at once and its key stops working. To use it again, pair it anew.
        {own ? " This is the device you are using: you will be signed out too." : ""}
      </p>
      <div className="confirm-actions">
        <button type="button" className="button" onClick={onDone} autoFocus>
          Cancel
        </button>
        <button
          type="button"
          className="button button--danger"
          onClick={confirm}
          disabled={busy}
          data-testid="revoke-confirm"
        >
          Revoke
        </button>
      </div>
    </dialog>
  );
}
