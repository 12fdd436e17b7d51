import { useConvexConnectionState } from "convex/react";
import { useEffect, useState } from "react";

// Shown while the sync socket is down. The Convex client reconnects by itself (1 s backoff,
// up to 16 s) and resubscribes every query; this only tells the user that what they see may
// be stale until then. A short grace period keeps a page load from flashing it.
const GRACE_MS = 1500;

export function ConnectionBanner() {
  const state = useConvexConnectionState();
  const down = !state.isWebSocketConnected;
  const [show, setShow] = useState(false);

  useEffect(() => {
    if (!down) {
      setShow(false);
      return;
    }
    const timer = window.setTimeout(() => setShow(true), state.hasEverConnected ? 0 : GRACE_MS);
    return () => window.clearTimeout(timer);
  }, [down, state.hasEverConnected]);

  return (
    <div className="connection" role="status" aria-live="polite">
      {show ? (
        <span className="connection-banner" data-testid="reconnecting">
          <span className="spinner" aria-hidden />
          {state.hasEverConnected ? "Reconnecting…" : "Connecting…"}
        </span>
      ) : null}
    </div>
  );
}
