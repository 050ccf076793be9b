-- The spool: webhook events the broker did not confirm in time, waiting to be republished.
--
-- One row per event, in arrival order (`id`). The drainer republishes the oldest rows first,
-- waits for the broker's confirm, and only then deletes them, so a row leaves this table only
-- once RabbitMQ holds the event. Everything needed to publish the event exactly as it would
-- have been published at arrival is kept: the encoded CloudEvent (`body`) and its AMQP
-- properties (`message_id`, `event_type`, `app_id`, `event_time`, `headers`).
CREATE TABLE webhook_spool (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The CloudEvent id (AMQP message_id), for operators searching for one webhook.
    message_id   TEXT        NOT NULL,
    exchange     TEXT        NOT NULL,
    routing_key  TEXT        NOT NULL,
    event_type   TEXT        NOT NULL,
    app_id       TEXT        NOT NULL,
    -- AMQP timestamp property: seconds since the epoch.
    event_time   BIGINT,
    -- AMQP string headers as [[name, value], ...], in publishing order.
    headers      JSONB       NOT NULL,
    body         BYTEA       NOT NULL,
    -- `gitlab`, `alertmanager` or a generic hook's name; for metrics and logs.
    source       TEXT        NOT NULL,
    -- Why the event was spooled instead of published (`broker_down`, `broker_error`, `behind_spool`).
    reason       TEXT        NOT NULL,
    spooled_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Failed republish attempts of this row and the last error, for the runbook.
    attempts     INTEGER     NOT NULL DEFAULT 0,
    last_error   TEXT
);
