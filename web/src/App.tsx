import { useCallback, useEffect, useRef, useState } from "react";
import { Route, Switch, useLocation } from "wouter";
import { Drawer } from "./components/Drawer";
import { Header } from "./components/Header";
import { FiltersContext, useFilters } from "./lib/filters";
import { useKeyboard } from "./lib/keyboard";
import { HomePage } from "./pages/HomePage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { ProjectsPage } from "./pages/ProjectsPage";
import { SearchPage } from "./pages/SearchPage";
import { SkillsPage } from "./pages/SkillsPage";
import { ThreadPage } from "./pages/ThreadPage";

// Every page of the app, by path. Pages that need more than the public query functions
// (device pairing, once devices exist) join this table like any other.
const ROUTES: { path: string; page: React.ComponentType }[] = [
  { path: "/", page: HomePage },
  { path: "/t/:id", page: ThreadPage },
  { path: "/search", page: SearchPage },
  { path: "/projects", page: ProjectsPage },
  { path: "/skills", page: SkillsPage },
];

export function App() {
  const [drawerOpen, setDrawerOpen] = useState(false);
  const [location] = useLocation();
  const filters = useFilters();
  const openRef = useRef(drawerOpen);
  openRef.current = drawerOpen;
  const closeDrawer = useCallback(() => {
    if (!openRef.current) return;
    setDrawerOpen(false);
    // Closing the sheet hands focus back to the button that opened it.
    document.querySelector<HTMLElement>("[data-testid=menu]")?.focus();
  }, []);

  // Choosing a page in the sheet (on a phone) closes it and moves focus to that page.
  useEffect(() => {
    if (!openRef.current) return;
    setDrawerOpen(false);
    document.getElementById("main")?.focus();
  }, [location]);
  useKeyboard({ onEscape: closeDrawer });

  return (
    <FiltersContext.Provider value={filters}>
      <div className="app" data-home={location === "/" ? "" : undefined}>
        <a className="skip-link" href="#main">
          Skip to content
        </a>
        <Header drawerOpen={drawerOpen} onToggleDrawer={() => setDrawerOpen((open) => !open)} />
        <div className="body">
          <Drawer open={drawerOpen} onClose={closeDrawer} />
          <main id="main" className="main" tabIndex={-1} inert={drawerOpen}>
            <Switch>
              {ROUTES.map(({ path, page }) => (
                <Route key={path} path={path} component={page} />
              ))}
              <Route component={NotFoundPage} />
            </Switch>
          </main>
        </div>
      </div>
    </FiltersContext.Provider>
  );
}
