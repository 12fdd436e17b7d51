import { useEffect } from "react";

/** The document title: "<page> · sessionbase". */
export function useTitle(page: string | undefined) {
  useEffect(() => {
    document.title = page ? `${page} · sessionbase` : "sessionbase";
  }, [page]);
}
