import { Component, type ReactNode } from "react";
import { isAuthError } from "../lib/access";

type Props = { onRefused: () => void; children: ReactNode };
type State = { error: Error | null };

/** Catches what a query throws while rendering. A refusal for want of authentication (the
 * server wants a paired device) hands over to the pairing screen; anything else is shown, with
 * a way to start again, instead of a blank page. */
export class AuthBoundary extends Component<Props, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: unknown): State {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  componentDidCatch(error: unknown): void {
    if (isAuthError(error)) this.props.onRefused();
  }

  render() {
    const { error } = this.state;
    if (error === null) return this.props.children;
    if (isAuthError(error)) return null;
    return (
      <main className="page page--center" data-testid="app-error">
        <h1>Something went wrong</h1>
        <p className="muted">{error.message}</p>
        <button type="button" className="button" onClick={() => window.location.reload()}>
          Reload
        </button>
      </main>
    );
  }
}
