import { Suspense, lazy, useCallback, useEffect, useRef, useState } from "react";
import { Route, Switch, useLocation } from "wouter";
import { Drawer } from "./components/Drawer";
import { Header } from "./components/Header";
import { FiltersContext, useFilters } from "./lib/filters";
import { useKeyboard } from "./lib/keyboard";
import { HomePage } from "./pages/HomePage";
import { NotFoundPage } from "./pages/NotFoundPage";

// Pages beyond the start page load as their own chunks, so the first paint of the history
// needs only the shell. The thread page's chunk (Markdown, the virtualized list) is fetched at
// once anyway, beside the first queries, since it is the page most often opened next.
const threadPage = import("./pages/ThreadPage");
const ThreadPage = lazy(() => threadPage.then((m) => ({ default: m.ThreadPage })));
const SearchPage = lazy(() => import("./pages/SearchPage").then((m) => ({ default: m.SearchPage })));
const ProjectsPage = lazy(() => import("./pages/ProjectsPage").then((m) => ({ default: m.ProjectsPage })));
const SkillsPage = lazy(() => import("./pages/SkillsPage").then((m) => ({ default: m.SkillsPage })));
const DevicesPage = lazy(() => import("./pages/DevicesPage").then((m) => ({ default: m.DevicesPage })));

// Every page of the app, by path. The pairing page (/pair) is not among them: it stands on
// its own, since a browser without access sees nothing else (see Root).
const ROUTES: { path: string; page: React.ComponentType }[] = [
  { path: "/", page: HomePage },
  { path: "/t/:id", page: ThreadPage },
  { path: "/search", page: SearchPage },
  { path: "/projects", page: ProjectsPage },
  { path: "/skills", page: SkillsPage },
  { path: "/devices", page: DevicesPage },
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
            <Suspense fallback={<div className="page" aria-busy="true" />}>
              <Switch>
                {ROUTES.map(({ path, page }) => (
                  <Route key={path} path={path} component={page} />
                ))}
                <Route component={NotFoundPage} />
              </Switch>
            </Suspense>
          </main>
        </div>
      </div>
    </FiltersContext.Provider>
  );
}
