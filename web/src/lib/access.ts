// Who this browser is to the server, and how the Convex client proves it.
//
// - `owner`: no credential, on a page loaded from loopback. The server trusts requests from its
//   own machine with every scope, unless it was started with --require-auth: a quick look at
//   `status:get` finds out, and a refusal turns this into `unpaired`.
// - `device`: a paired device. The Convex client gets its tokens through `setAuth`, whose
//   fetcher trades the device secret at /auth/token; a refused secret (revoked, removed) ends
//   the session, forgets the credential and says why.
// - `unpaired`: the app shows the pairing screen instead of failing queries.
import type { ConvexReactClient } from "convex/react";
import { createContext, useContext, useSyncExternalStore } from "react";
import { api } from "../api";
import {
  type Credential,
  ExchangeError,
  clearCredential,
  fetchDeviceToken,
  loadCredential,
  redeemCode,
  saveCredential,
} from "./credential";

export type AccessState =
  | { kind: "owner" }
  | { kind: "device"; credential: Credential }
  | {
      kind: "unpaired";
      /** Why a session ended (a revoked device), or null when this browser never paired. */
      reason: string | null;
      /** The page is on the server's machine and the server trusts it without pairing. */
      ownerAvailable: boolean;
    };

const RETRY_MAX_MS = 15_000;
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Whether the server can see this page's requests as its own machine's: it names loopback. */
export function pageIsLoopback(): boolean {
  const host = window.location.hostname;
  return LOOPBACK_HOSTS.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** An error that means "you need to pair": what the server says to an unknown caller. */
export function isAuthError(error: unknown): boolean {
  return error instanceof Error && /needs authentication|Unauthenticated/i.test(error.message);
}

export class Access {
  private state: AccessState;
  private readonly listeners = new Set<() => void>();
  private generation = 0; // bumped per credential: a stale fetcher gives up
  private stopProbe: (() => void) | null = null;

  constructor(private readonly client: ConvexReactClient) {
    const credential = loadCredential();
    if (credential) {
      this.state = { kind: "device", credential };
      this.authenticate(credential);
    } else if (pageIsLoopback()) {
      this.state = { kind: "owner" };
      this.probeOwner();
    } else {
      this.state = { kind: "unpaired", reason: null, ownerAvailable: false };
    }
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly current = (): AccessState => this.state;

  /** Whether the current caller holds `scope` (the owner holds every scope). */
  has(scope: string): boolean {
    const state = this.state;
    if (state.kind === "owner") return true;
    return state.kind === "device" && state.credential.scopes.includes(scope);
  }

  /** Pair this browser with a code; throws ExchangeError with a message to show. */
  async pair(code: string, name: string): Promise<Credential> {
    const credential = await redeemCode(code, name);
    saveCredential(credential);
    this.stopProbing();
    this.set({ kind: "device", credential });
    this.authenticate(credential);
    return credential;
  }

  /** Use the app as this machine's owner (offered when the server trusts this page). */
  continueAsOwner(): void {
    this.set({ kind: "owner" });
  }

  /** A query was refused for want of authentication: show the pairing screen. */
  refused(): void {
    if (this.state.kind === "unpaired") return;
    this.set({ kind: "unpaired", reason: null, ownerAvailable: false });
  }

  private set(state: AccessState): void {
    this.state = state;
    for (const listener of this.listeners) listener();
  }

  private authenticate(credential: Credential): void {
    const generation = ++this.generation;
    this.client.setAuth(
      () => this.token(credential, generation),
      (authenticated) => {
        // Refused without our fetcher's say (the server took the secret, not its tokens).
        if (!authenticated && generation === this.generation && this.state.kind === "device") {
          this.ended(generation, "the server did not accept this device's token");
        }
      },
    );
  }

  /** The Convex client's token fetcher. It never rejects (the client would stall): a
   * refused secret ends the session (null); an unreachable server or a rate limit is
   * retried until it answers, while the reconnecting banner says so. */
  private async token(credential: Credential, generation: number): Promise<string | null> {
    let delay = 1000;
    for (;;) {
      if (generation !== this.generation) return null;
      try {
        const issued = await fetchDeviceToken(credential.secret);
        if (generation !== this.generation) return null;
        this.noteScopes(credential, issued.scopes);
        return issued.token;
      } catch (error) {
        if (error instanceof ExchangeError && error.kind === "refused") {
          this.ended(generation, error.message);
          return null;
        }
        const wait = error instanceof ExchangeError && error.kind === "limited" ? error.retryAfter * 1000 : delay;
        delay = Math.min(delay * 2, RETRY_MAX_MS);
        await new Promise((resolve) => window.setTimeout(resolve, wait));
      }
    }
  }

  private noteScopes(credential: Credential, scopes: string[]): void {
    if (scopes.join(" ") === credential.scopes.join(" ")) return;
    const updated = { ...credential, scopes };
    saveCredential(updated);
    if (this.state.kind === "device") this.set({ kind: "device", credential: updated });
  }

  private ended(generation: number, reason: string): void {
    if (generation !== this.generation) return;
    this.generation += 1;
    clearCredential(); // the Convex client clears its own auth when the fetcher says null
    this.set({ kind: "unpaired", reason, ownerAvailable: false });
    if (pageIsLoopback()) this.probeOwner();
  }

  /** Ask `status:get` without a credential: an answer means the server trusts this page as
   * its own machine's; a refusal means it wants a paired device. */
  private probeOwner(): void {
    this.stopProbing();
    const watch = this.client.watchQuery(api.status, {});
    const check = () => {
      let trusted: boolean;
      try {
        if (watch.localQueryResult() === undefined) return;
        trusted = true;
      } catch (error) {
        trusted = !isAuthError(error);
      }
      this.stopProbing();
      const state = this.state;
      if (state.kind === "owner" && !trusted) this.refused();
      if (state.kind === "unpaired" && trusted) this.set({ ...state, ownerAvailable: true });
    };
    const unsubscribe = watch.onUpdate(check);
    this.stopProbe = unsubscribe;
    check();
  }

  private stopProbing(): void {
    this.stopProbe?.();
    this.stopProbe = null;
  }
}

export const AccessContext = createContext<Access | null>(null);

/** The access store and its current state (re-renders when it changes). */
export function useAccess(): [Access, AccessState] {
  const access = useContext(AccessContext);
  if (!access) throw new Error("useAccess outside AccessContext");
  return [access, useSyncExternalStore(access.subscribe, access.current)];
}
