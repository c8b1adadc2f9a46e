-- What listsync learns about a Marketo instance, shared by every sync that
-- writes to it, one row per instance (its REST host): the rate of its last
-- measured bulk import, so that a new process times its first import's
-- status read by it.
CREATE TABLE marketo_facts (
    instance            TEXT    NOT NULL PRIMARY KEY,
    import_rows_per_sec REAL    NOT NULL CHECK (import_rows_per_sec > 0),
    import_measured_at  INTEGER NOT NULL
);
