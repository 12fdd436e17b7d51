-- sessionbase on PostgreSQL, schema 3: a project is one project across machines when its
-- repository is the same (store.projects); each machine keeps its working dir. Skills are
-- found on each machine's disk, so each machine replaces only its own.

CREATE TABLE project_dirs (
    project_id  text NOT NULL,
    machine     text NOT NULL,
    working_dir text NOT NULL,
    PRIMARY KEY (project_id, machine)
);
INSERT INTO project_dirs (project_id, machine, working_dir)
  SELECT id, coalesce(machine, ''), working_dir FROM projects WHERE origin = 'derived'
  ON CONFLICT DO NOTHING;

ALTER TABLE skills ADD COLUMN machine text NOT NULL DEFAULT '';
ALTER TABLE skills DROP CONSTRAINT skills_pkey;
ALTER TABLE skills ADD PRIMARY KEY (machine, id);
ALTER TABLE skill_problems ADD COLUMN machine text NOT NULL DEFAULT '';
