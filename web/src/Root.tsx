import { useLocation } from "wouter";
import { App } from "./App";
import { AuthBoundary } from "./components/AuthBoundary";
import { useAccess } from "./lib/access";
import { PairPage } from "./pages/PairPage";

/** The pairing page (at /pair, and instead of the app while this browser has no access),
 * else the app. */
export function Root() {
  const [access, state] = useAccess();
  const [location] = useLocation();
  if (location === "/pair" || state.kind === "unpaired") return <PairPage />;
  return (
    <AuthBoundary onRefused={() => access.refused()}>
      <App />
    </AuthBoundary>
  );
}
