import react from "@vitejs/plugin-react";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The build lands inside the Python package, so `pip install` / `uv tool install` ships it and
// no user ever needs Node.js. File names carry content hashes (served with long-cache headers);
// index.html is the only unhashed file. `SESSIONBASE_WEB_OUT` lets the freshness check build
// elsewhere and compare.
const outDir =
  process.env.SESSIONBASE_WEB_OUT ??
  fileURLToPath(new URL("../src/sessionbase/server/web", import.meta.url));

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      "/api": { target: "http://127.0.0.1:7788", ws: true },
    },
  },
});
