-- A suggested action can be rejected (`POST /api/actions/reject`): its approval is closed as
-- `rejected`, by `decided_by` at `decided_at`, with the reason given (NULL when none was). A
-- rejection is a decision like an approval: final, so the action can no longer be approved.
ALTER TABLE approvals DROP CONSTRAINT approvals_state_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_state_check
    CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'cancelled'));
ALTER TABLE approvals ADD COLUMN reason text;

-- `GET /api/incidents` pages newest first by (opened_at, id) — `before=<id>` continues below that
-- incident — with or without a state filter. Each index serves one shape in order, so a page
-- reads `limit` index entries whatever the table's size, instead of sorting every incident.
-- The new state index supersedes incidents_by_state (state, opened_at DESC), which could not
-- order ties by id; the sweeper's `state = 'awaiting_approval'` still uses its leading column.
CREATE INDEX incidents_newest ON incidents (opened_at DESC, id DESC);
CREATE INDEX incidents_by_state_newest ON incidents (state, opened_at DESC, id DESC);
DROP INDEX incidents_by_state;
