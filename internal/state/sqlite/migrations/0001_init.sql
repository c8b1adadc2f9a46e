-- The ledger of listsync, one file. Times are Unix microseconds (UTC).
-- Keys use the BINARY collation: bytewise order, the same as Go's.

CREATE TABLE bindings (
    sync_name TEXT    NOT NULL PRIMARY KEY,
    list_ref  TEXT    NOT NULL,
    list_id   INTEGER NOT NULL,
    bound_at  INTEGER NOT NULL
);

CREATE TABLE members (
    sync_name    TEXT    NOT NULL,
    lead_key     TEXT    NOT NULL COLLATE BINARY,
    lead_id      INTEGER,          -- NULL: not known
    fields_hash  BLOB,             -- NULL: not known, fields are re-sent
    confirmed_at INTEGER NOT NULL,
    PRIMARY KEY (sync_name, lead_key)
) WITHOUT ROWID;

CREATE TABLE rejects (
    sync_name        TEXT    NOT NULL,
    lead_key         TEXT    NOT NULL COLLATE BINARY,
    op               TEXT    NOT NULL CHECK (op IN ('add', 'remove')),
    code             TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    first_attempt_at INTEGER NOT NULL,
    last_attempt_at  INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    PRIMARY KEY (sync_name, lead_key)
) WITHOUT ROWID;

CREATE TABLE runs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    sync_name         TEXT    NOT NULL,
    trigger_kind      TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    list_id           INTEGER NOT NULL DEFAULT 0,
    full_resync       INTEGER NOT NULL DEFAULT 0,
    rows_read         INTEGER NOT NULL DEFAULT 0,
    invalid           INTEGER NOT NULL DEFAULT 0,
    invalid_samples   TEXT    NOT NULL DEFAULT '[]',
    duplicates        INTEGER NOT NULL DEFAULT 0,
    adds_planned      INTEGER NOT NULL DEFAULT 0,
    removes_planned   INTEGER NOT NULL DEFAULT 0,
    updates_planned   INTEGER NOT NULL DEFAULT 0,
    deferred          INTEGER NOT NULL DEFAULT 0,
    adds_confirmed    INTEGER NOT NULL DEFAULT 0,
    removes_confirmed INTEGER NOT NULL DEFAULT 0,
    updates_confirmed INTEGER NOT NULL DEFAULT 0,
    rejected          INTEGER NOT NULL DEFAULT 0,
    api_calls         INTEGER NOT NULL DEFAULT 0,
    error             TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX runs_by_sync ON runs (sync_name, id);
CREATE INDEX runs_running ON runs (sync_name) WHERE status = 'running';

CREATE TABLE locks (
    sync_name  TEXT    NOT NULL PRIMARY KEY,
    owner      TEXT    NOT NULL,
    host       TEXT    NOT NULL,
    pid        INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE ticks (
    sync_name  TEXT    NOT NULL,
    tick       INTEGER NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (sync_name, tick)
) WITHOUT ROWID;
