-- Who set the pause switch: the name an admin client passed (`by`), else `api`. NULL for a
-- state set before the herder recorded it.
ALTER TABLE pause ADD COLUMN changed_by TEXT;

-- A decision's lineage is walked both ways: forward through (instance, job_id), which is
-- unique already, and backward from a job to the decision that retried it into existence.
CREATE INDEX decisions_retried_as ON decisions (instance, new_job_id) WHERE new_job_id IS NOT NULL;
