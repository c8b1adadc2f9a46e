-- The ledger of listsync in Postgres, shared by several workers.
-- Keys use the "C" collation: bytewise order, the same as Go's, which the
-- engine's merge join relies on.

CREATE TABLE listsync_bindings (
    sync_name text        NOT NULL PRIMARY KEY,
    list_ref  text        NOT NULL,
    list_id   bigint      NOT NULL,
    bound_at  timestamptz NOT NULL
);

CREATE TABLE listsync_members (
    sync_name    text        NOT NULL,
    lead_key     text        COLLATE "C" NOT NULL,
    lead_id      bigint,      -- NULL: not known
    fields_hash  bytea,       -- NULL: not known, fields are re-sent
    confirmed_at timestamptz NOT NULL,
    PRIMARY KEY (sync_name, lead_key)
);

CREATE TABLE listsync_rejects (
    sync_name        text        NOT NULL,
    lead_key         text        COLLATE "C" NOT NULL,
    op               text        NOT NULL CHECK (op IN ('add', 'remove')),
    code             text        NOT NULL,
    reason           text        NOT NULL,
    attempts         integer     NOT NULL,
    first_attempt_at timestamptz NOT NULL,
    last_attempt_at  timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    PRIMARY KEY (sync_name, lead_key)
);

CREATE TABLE listsync_runs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sync_name         text        NOT NULL,
    trigger_kind      text        NOT NULL,
    status            text        NOT NULL,
    started_at        timestamptz NOT NULL,
    ended_at          timestamptz,
    list_id           bigint      NOT NULL DEFAULT 0,
    full_resync       boolean     NOT NULL DEFAULT false,
    rows_read         bigint      NOT NULL DEFAULT 0,
    invalid           bigint      NOT NULL DEFAULT 0,
    invalid_samples   text[]      NOT NULL DEFAULT '{}',
    duplicates        bigint      NOT NULL DEFAULT 0,
    adds_planned      bigint      NOT NULL DEFAULT 0,
    removes_planned   bigint      NOT NULL DEFAULT 0,
    updates_planned   bigint      NOT NULL DEFAULT 0,
    deferred          bigint      NOT NULL DEFAULT 0,
    adds_confirmed    bigint      NOT NULL DEFAULT 0,
    removes_confirmed bigint      NOT NULL DEFAULT 0,
    updates_confirmed bigint      NOT NULL DEFAULT 0,
    rejected          bigint      NOT NULL DEFAULT 0,
    api_calls         bigint      NOT NULL DEFAULT 0,
    error             text        NOT NULL DEFAULT ''
);

CREATE INDEX listsync_runs_by_sync ON listsync_runs (sync_name, id);
CREATE INDEX listsync_runs_running ON listsync_runs (sync_name) WHERE status = 'running';

CREATE TABLE listsync_ticks (
    sync_name  text        NOT NULL,
    tick       timestamptz NOT NULL,
    claimed_at timestamptz NOT NULL,
    PRIMARY KEY (sync_name, tick)
);
