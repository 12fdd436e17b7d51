import { ConvexProvider, ConvexReactClient } from "convex/react";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import "./styles.css";

// The app talks to the server that served it, over the Convex sync protocol at
// /api/<version>/sync. Our origin is not a *.convex.cloud URL, so the client's check for one
// is turned off.
const convex = new ConvexReactClient(window.location.origin, {
  skipConvexDeploymentUrlCheck: true,
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <ConvexProvider client={convex}>
      <App />
    </ConvexProvider>
  </StrictMode>,
);
