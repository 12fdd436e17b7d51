import { useCallback, useEffect, useState } from "react";
import { Route, Switch, useLocation } from "wouter";
import { Drawer } from "./components/Drawer";
import { Header } from "./components/Header";
import { useKeyboard } from "./lib/keyboard";
import { useFilters } from "./lib/filters";
import { HomePage } from "./pages/HomePage";
import { NotFoundPage } from "./pages/NotFoundPage";

// Every page of the app, by path. Pages that need more than the public query functions
// (device pairing, once devices exist) join this table like any other.
const ROUTES: { path: string; page: React.ComponentType }[] = [{ path: "/", page: HomePage }];

export function App() {
  const [drawerOpen, setDrawerOpen] = useState(false);
  const [location] = useLocation();
  const filters = useFilters();
  const closeDrawer = useCallback(() => setDrawerOpen(false), []);

  // A page change closes the sheet on a phone.
  useEffect(() => setDrawerOpen(false), [location]);
  useKeyboard({ onEscape: closeDrawer });

  return (
    <div className="app" data-home={location === "/" ? "" : undefined}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Header drawerOpen={drawerOpen} onToggleDrawer={() => setDrawerOpen((open) => !open)} />
      <div className="body">
        <Drawer open={drawerOpen} onClose={closeDrawer} filters={filters} />
        <main id="main" className="main" tabIndex={-1}>
          <Switch>
            {ROUTES.map(({ path, page }) => (
              <Route key={path} path={path} component={page} />
            ))}
            <Route component={NotFoundPage} />
          </Switch>
        </main>
      </div>
    </div>
  );
}
