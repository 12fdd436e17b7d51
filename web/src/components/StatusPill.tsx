import { useQuery } from "convex/react";
import { Globe } from "lucide-react";
import { useEffect, useRef, useState } from "react";
import { api, type Exposure } from "../api";
import { bytes, compact, count, plural } from "../lib/format";

const MIRROR_LABEL: Record<string, string> = {
  live: "Live",
  catching_up: "Catching up",
  stopped: "Stopped",
  standby: "Standby",
  off: "Not following",
};
const label = (mirror: string) => MIRROR_LABEL[mirror] ?? mirror;

/** The header's live view of `status:get`: a compact pill, details on click. */
export function StatusPill() {
  const status = useQuery(api.status, {});
  const [open, setOpen] = useState(false);
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    const close = (event: Event) => {
      if (event instanceof KeyboardEvent && event.key !== "Escape") return;
      if (event instanceof MouseEvent && box.current?.contains(event.target as Node)) return;
      setOpen(false);
    };
    document.addEventListener("mousedown", close);
    document.addEventListener("keydown", close);
    return () => {
      document.removeEventListener("mousedown", close);
      document.removeEventListener("keydown", close);
    };
  }, [open]);

  if (status === undefined) {
    return <div className="status-pill status-pill--loading" aria-hidden />;
  }
  const mirror = status.mirror ?? "live";
  const lag = status.lagBytes ?? 0;
  return (
    <div className="status" ref={box}>
      <button
        type="button"
        className="status-pill"
        data-mirror={mirror}
        aria-expanded={open}
        aria-controls="status-details"
        title={`${plural(status.threads, "thread")}, ${plural(status.messages, "message")}: show the mirror's status`}
        onClick={() => setOpen((value) => !value)}
      >
        <span className="status-dot" aria-hidden />
        <span className="status-state">{label(mirror)}</span>
        <span className="status-counts">
          {compact(status.threads)} threads · {compact(status.messages)} msgs
        </span>
        {status.exposure && !status.exposure.loopbackOnly ? (
          <Globe size={14} className="status-exposed" aria-label="reachable from other devices" />
        ) : null}
      </button>
      {open ? (
        <div id="status-details" className="popover status-details" role="dialog" aria-label="Mirror status">
          <dl>
            <dt>Mirror</dt>
            <dd data-testid="status-mirror">{label(mirror)}</dd>
            <dt>Threads</dt>
            <dd>{count(status.threads)}</dd>
            <dt>Messages</dt>
            <dd>{count(status.messages)}</dd>
            <dt>Rollout files</dt>
            <dd>{count(status.files)}</dd>
            <dt>Not yet read</dt>
            <dd>{lag ? bytes(lag) : "nothing"}</dd>
            <dt>File errors</dt>
            <dd>{count(status.errors)}</dd>
            {status.skillProblems?.length ? (
              <>
                <dt>Skill problems</dt>
                <dd>{count(status.skillProblems.length)}</dd>
              </>
            ) : null}
          </dl>
          {status.exposure ? <Access exposure={status.exposure} paired={status.devices?.paired ?? 0} /> : null}
          {status.codexHomes?.length ? (
            <div className="status-homes">
              <div className="label">Codex homes</div>
              <ul>
                {status.codexHomes.map((home) => (
                  <li key={home}>
                    <code>{home}</code>
                  </li>
                ))}
              </ul>
            </div>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}

/** Who can reach this server, and how: the addresses, HTTPS, sign-in and paired devices. */
function Access({ exposure, paired }: { exposure: Exposure; paired: number }) {
  return (
    <div className="status-homes" data-testid="status-access">
      <div className="label">Access</div>
      <dl>
        <dt>Other devices</dt>
        <dd>{exposure.loopbackOnly ? "cannot reach it" : plural(paired, "paired device")}</dd>
        <dt>Sign-in</dt>
        <dd>{exposure.requireAuth ? "everyone" : "other devices"}</dd>
        <dt>HTTPS</dt>
        <dd>{exposure.tls ? "on" : "off"}</dd>
      </dl>
      <ul>
        {(exposure.loopbackOnly ? [exposure.listen] : exposure.urls).map((url) => (
          <li key={url}>
            <code>{url}</code>
          </li>
        ))}
      </ul>
    </div>
  );
}
