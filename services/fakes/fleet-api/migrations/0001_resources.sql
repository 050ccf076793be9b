-- Clusters and nodepools share one table: they differ only in `kind` and in having an owner,
-- and the list/search code is the same for both.
CREATE TABLE resources (
    id           uuid PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('Cluster', 'NodePool')),
    owner_id     uuid        REFERENCES resources (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    labels       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- `json`, not `jsonb`: kept as sent. jsonb would turn 1e308 into a 309-digit numeric
    -- that no JSON reader can take back, and would reorder keys.
    spec         json        NOT NULL DEFAULT '{}'::json,
    generation   integer     NOT NULL DEFAULT 1,
    -- The aggregated status conditions (Reconciled, LastKnownReconciled, <Adapter>Successful),
    -- recomputed on every accepted status report and every generation bump.
    conditions   jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_time timestamptz NOT NULL,
    updated_time timestamptz NOT NULL,
    created_by   text        NOT NULL,
    updated_by   text        NOT NULL,
    deleted_time timestamptz,
    deleted_by   text,
    CHECK ((kind = 'Cluster') = (owner_id IS NULL))
);

-- Names are unique per kind and owner (clusters globally, nodepools within their cluster).
CREATE UNIQUE INDEX resources_name_unique
    ON resources (kind, COALESCE(owner_id, '00000000-0000-0000-0000-000000000000'::uuid), name);
-- Lists page through one kind in creation order.
CREATE INDEX resources_kind_created ON resources (kind, created_time, id);
CREATE INDEX resources_owner ON resources (owner_id) WHERE owner_id IS NOT NULL;
CREATE INDEX resources_labels ON resources USING gin (labels jsonb_path_ops);

-- The latest report of each adapter for each resource (upserted by adapter name).
CREATE TABLE adapter_statuses (
    resource_id         uuid        NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    adapter             text        NOT NULL,
    observed_generation integer     NOT NULL,
    conditions          jsonb       NOT NULL,
    data                json,
    metadata            json,
    created_time        timestamptz NOT NULL,
    last_report_time    timestamptz NOT NULL,
    PRIMARY KEY (resource_id, adapter)
);
