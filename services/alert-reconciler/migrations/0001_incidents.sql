-- The alert-reconciler's durable state: everything needed to resume after a restart and to
-- answer "who did what, when" afterwards.

-- One incident per open Alertmanager group (groupKey). Closed incidents stay for history.
CREATE TABLE incidents (
    id                   uuid PRIMARY KEY,
    group_key            text        NOT NULL,
    state                text        NOT NULL CHECK (state IN
                           ('received', 'investigating', 'awaiting_approval', 'executing', 'resolved', 'expired')),
    is_open              boolean     GENERATED ALWAYS AS (state NOT IN ('resolved', 'expired')) STORED,
    title                text        NOT NULL,
    receiver             text        NOT NULL,
    labels               jsonb       NOT NULL,       -- labels of the alert that opened it
    group_data           jsonb       NOT NULL,       -- groupLabels, commonLabels, externalURL, ...
    opened_at            timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    closed_at            timestamptz,
    approval_expires_at  timestamptz
);
CREATE UNIQUE INDEX incidents_one_open_per_group ON incidents (group_key) WHERE is_open;
CREATE INDEX incidents_by_state ON incidents (state, opened_at DESC);

-- The alerts of an incident, by fingerprint.
CREATE TABLE incident_alerts (
    incident_id    uuid        NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    fingerprint    text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    starts_at      text        NOT NULL,
    alert          jsonb       NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    notifications  integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (incident_id, fingerprint)
);

-- Alert event ids already handled: at-least-once delivery makes every consumer idempotent.
CREATE TABLE processed_events (
    event_id      text        PRIMARY KEY,
    processed_at  timestamptz NOT NULL DEFAULT now()
);

-- A run: the recipes launched together for one purpose (the debugging of an incident, or one
-- approved action). Its id is the uuid in data.json and the Redis result channel.
CREATE TABLE runs (
    id            uuid        PRIMARY KEY,
    incident_id   uuid        NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind          text        NOT NULL CHECK (kind IN ('debugging', 'action')),
    state         text        NOT NULL CHECK (state IN ('running', 'completed', 'cancelled')),
    data          jsonb       NOT NULL,              -- data.json exactly as recipes receive it
    created_at    timestamptz NOT NULL DEFAULT now(),
    deadline      timestamptz,                       -- set when the first recipe launches
    completed_at  timestamptz
);
CREATE INDEX runs_running ON runs (created_at) WHERE state = 'running';
CREATE INDEX runs_by_incident ON runs (incident_id);

-- One recipe of a run, with the recipe as planned (a snapshot) and what became of it.
CREATE TABLE recipe_runs (
    run_id       uuid        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    recipe       text        NOT NULL,
    spec         jsonb       NOT NULL,
    state        text        NOT NULL CHECK (state IN
                   ('pending', 'launched', 'successful', 'failed', 'unknown', 'timed_out', 'cancelled')),
    handle       text,                               -- Job name or process id
    launched_at  timestamptz,
    finished_at  timestamptz,
    detail       text,                               -- why it failed, timed out or is unknown
    results      jsonb,                              -- {actions, analysis, json, links}
    PRIMARY KEY (run_id, recipe)
);

-- Actions suggested for an incident; approving one is a single-use, expiring decision.
CREATE TABLE approvals (
    id             uuid        PRIMARY KEY,
    incident_id    uuid        NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    action         text        NOT NULL,
    data           jsonb       NOT NULL DEFAULT '{}'::jsonb,   -- parameters a recipe suggested
    suggested_by   text[]      NOT NULL DEFAULT '{}',
    state          text        NOT NULL CHECK (state IN ('pending', 'approved', 'expired', 'cancelled')),
    forced         boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    decided_at     timestamptz,
    decided_by     text,
    message_id     text,                                       -- the Webex card it is on
    run_id         uuid        REFERENCES runs (id),
    UNIQUE (incident_id, action)
);

-- Who did what, when: every transition and decision.
CREATE TABLE audit_log (
    id           bigserial   PRIMARY KEY,
    incident_id  uuid        NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    action       text        NOT NULL,
    detail       jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_by_incident ON audit_log (incident_id, id);

-- The chat outbox: a report is written in the same transaction as the state change it
-- reports, then sent; a restart sends what was not sent, and never re-sends what was.
CREATE TABLE deliveries (
    id               bigserial   PRIMARY KEY,
    incident_id      uuid        NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    sink             text        NOT NULL,
    dedupe_key       text        NOT NULL UNIQUE,
    report           jsonb       NOT NULL,
    state            text        NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    remote_id        text,                                     -- e.g. the Webex message id
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX deliveries_pending ON deliveries (id) WHERE state = 'pending';
