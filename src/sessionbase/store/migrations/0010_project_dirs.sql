-- sessionbase schema 10: a project is one project across machines when its repository is the
-- same (several machines can share a PostgreSQL database, and `push` copies a mirror there).
-- Its id comes from the repository (store.projects); each machine keeps its working dir.

CREATE TABLE project_dirs (
    project_id  TEXT NOT NULL,
    machine     TEXT NOT NULL,
    working_dir TEXT NOT NULL,
    PRIMARY KEY (project_id, machine)
);

-- Derived projects of a repository take the id ingest now gives them (the repository's, see
-- store.projects); threads, skills and the user's decisions about them follow.
CREATE TEMP TABLE project_moves AS
  SELECT old, new FROM (
    SELECT id AS old, sb_project_id(coalesce(machine, ''), working_dir, repo_url) AS new
    FROM projects WHERE origin = 'derived'
  ) WHERE new != old;

INSERT OR IGNORE INTO project_dirs (project_id, machine, working_dir)
  SELECT coalesce((SELECT new FROM project_moves WHERE old = p.id), p.id),
         coalesce(p.machine, ''), p.working_dir
  FROM projects p WHERE p.origin = 'derived';

INSERT OR IGNORE INTO projects (id, name, working_dir, repo_url, repo_branch, repo_commit,
                                machine, created_at, updated_at, origin, hidden)
  SELECT m.new, p.name, p.working_dir, p.repo_url, p.repo_branch, p.repo_commit, p.machine,
         p.created_at, p.updated_at, 'derived', p.hidden
  FROM project_moves m JOIN projects p ON p.id = m.old;

UPDATE threads SET project_id = (SELECT new FROM project_moves WHERE old = threads.project_id)
  WHERE project_id IN (SELECT old FROM project_moves);

UPDATE skills SET project_id = (SELECT new FROM project_moves WHERE old = skills.project_id)
  WHERE project_id IN (SELECT old FROM project_moves);

UPDATE OR IGNORE user_metadata
  SET id = (SELECT new FROM project_moves WHERE old = user_metadata.id)
  WHERE entity = 'project' AND id IN (SELECT old FROM project_moves);

DELETE FROM projects WHERE id IN (SELECT old FROM project_moves);

DROP TABLE project_moves;
