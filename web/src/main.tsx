import { ConvexProvider, ConvexReactClient } from "convex/react";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { Access, AccessContext, isAuthError } from "./lib/access";
import { Root } from "./Root";
import "./styles.css";

// The app talks to the server that served it, over the Convex sync protocol at
// /api/<version>/sync. Our origin is not a *.convex.cloud URL, so the client's check for one
// is turned off.
const convex = new ConvexReactClient(window.location.origin, {
  skipConvexDeploymentUrlCheck: true,
});
const access = new Access(convex);

createRoot(document.getElementById("root")!, {
  // A query refused for want of authentication is expected (the pairing screen follows),
  // not an error to report.
  onCaughtError(error, info) {
    if (!isAuthError(error)) console.error(error, info.componentStack);
  },
}).render(
  <StrictMode>
    <ConvexProvider client={convex}>
      <AccessContext.Provider value={access}>
        <Root />
      </AccessContext.Provider>
    </ConvexProvider>
  </StrictMode>,
);
