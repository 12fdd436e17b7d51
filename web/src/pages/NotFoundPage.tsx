import { Link } from "wouter";

export function NotFoundPage() {
  return (
    <div className="page page--center">
      <h1>Nothing here</h1>
      <p className="muted">
        This address names no page. <Link href="/">Back to the start</Link>.
      </p>
    </div>
  );
}
