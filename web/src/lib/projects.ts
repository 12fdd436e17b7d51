import { useQuery } from "convex/react";
import { useMemo } from "react";
import { api, type Project } from "../api";

/** Every project by id (one live subscription, shared by all components that ask). */
export function useProjects(): { list: Project[] | undefined; byId: Map<string, Project> } {
  const list = useQuery(api.projects, {});
  const byId = useMemo(() => new Map((list ?? []).map((p) => [p.id, p])), [list]);
  return { list, byId };
}
