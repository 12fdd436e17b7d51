import { createContext, useContext, useEffect, useState } from "react";

// The history drawer's filters, kept across visits in localStorage.
export type Filters = {
  projectId: string;
  source: string;
  archived: boolean;
  set: (change: Partial<Pick<Filters, "projectId" | "source" | "archived">>) => void;
};

const KEY = "sessionbase.filters";

type Stored = { projectId: string; source: string; archived: boolean };

function load(): Stored {
  try {
    const raw = JSON.parse(localStorage.getItem(KEY) ?? "{}") as Partial<Stored>;
    return {
      projectId: typeof raw.projectId === "string" ? raw.projectId : "",
      source: typeof raw.source === "string" ? raw.source : "",
      archived: raw.archived === true,
    };
  } catch {
    return { projectId: "", source: "", archived: false };
  }
}

export function useFilters(): Filters {
  const [state, setState] = useState<Stored>(load);
  useEffect(() => {
    try {
      localStorage.setItem(KEY, JSON.stringify(state));
    } catch {
      // private mode: filters just do not persist
    }
  }, [state]);
  return { ...state, set: (change) => setState((prev) => ({ ...prev, ...change })) };
}

export const FiltersContext = createContext<Filters | null>(null);

/** The drawer's filters, from anywhere below the app. */
export function useFilterState(): Filters {
  const filters = useContext(FiltersContext);
  if (!filters) throw new Error("useFilterState outside FiltersContext");
  return filters;
}
