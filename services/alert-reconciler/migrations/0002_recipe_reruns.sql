-- A debugging recipe whose result was lost (its reconciler stopped, or Redis reconnected, while
-- it answered) is launched again, a bounded number of times; an action recipe never is.
-- `attempt` counts the launches of the current row (1 = the first), `reruns` keeps why each
-- re-run happened, in order, for the report and the incident timeline.
ALTER TABLE recipe_runs
    ADD COLUMN attempt integer NOT NULL DEFAULT 1,
    ADD COLUMN reruns  jsonb   NOT NULL DEFAULT '[]';
