-- The herder's ledger: one row per decision about one GitLab job, unique per instance + job id,
-- so a redelivered Job Hook never leads to a second retry. A retry creates a new job (a new id)
-- in GitLab, so each attempt of a job gets its own row.
CREATE TABLE decisions (
    id              BIGSERIAL PRIMARY KEY,
    instance        TEXT        NOT NULL,
    job_id          BIGINT      NOT NULL,
    project_id      BIGINT      NOT NULL,
    project_path    TEXT        NOT NULL,
    pipeline_id     BIGINT      NOT NULL,
    git_ref         TEXT        NOT NULL,
    job_name        TEXT        NOT NULL,
    job_stage       TEXT        NOT NULL,
    job_url         TEXT        NOT NULL,
    failure_reason  TEXT,
    event_id        TEXT        NOT NULL,
    -- The matcher that matched; NULL when no problem was detected or none could be looked for.
    matcher         TEXT,
    -- What the herder does: retry, report, alert or none.
    action          TEXT        NOT NULL CHECK (action IN ('retry', 'report', 'alert', 'none')),
    -- Why, in one sentence (the evidence, or why a retry became a report).
    reason          TEXT        NOT NULL,
    -- The retry this would be (earlier attempts + 1) and the limit it was held against.
    attempt         INTEGER     NOT NULL,
    retry_limit     INTEGER,
    delay_ms        BIGINT,
    -- new: decided, the retry not yet scheduled; scheduled: the delayed retry is queued;
    -- retrying: a worker is calling GitLab; done: finished (see outcome).
    state           TEXT        NOT NULL CHECK (state IN ('new', 'scheduled', 'retrying', 'done')),
    -- retried, already_retried, superseded, paused, failed, reported, no_problem.
    outcome         TEXT,
    new_job_id      BIGINT,
    error           TEXT,
    log_line        TEXT,
    decided_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    retry_due_at    TIMESTAMPTZ,
    claimed_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (instance, job_id)
);

CREATE INDEX decisions_recent ON decisions (decided_at DESC);
CREATE INDEX decisions_open ON decisions (state) WHERE state <> 'done';

-- Notifications not yet confirmed by the broker (transactional outbox): written in the same
-- transaction as the decision, deleted once published.
CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    event_id    TEXT        NOT NULL UNIQUE,
    payload     JSONB       NOT NULL,
    chat_text   TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts    INTEGER     NOT NULL DEFAULT 0,
    last_error  TEXT
);

-- The pause switch, shared by every replica.
CREATE TABLE pause (
    singleton   BOOLEAN     PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    paused      BOOLEAN     NOT NULL,
    reason      TEXT,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO pause (paused) VALUES (FALSE);
