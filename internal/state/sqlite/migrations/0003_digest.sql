-- The ledger digest (see digest.go): what ScanDigest reads instead of the
-- members, one blob per ~16,384 members.
--
-- digest_chunks is the compacted digest: chunks of entries sorted by
-- fingerprint, seq order continuing fingerprint order.
CREATE TABLE digest_chunks (
    sync_name TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    data      BLOB    NOT NULL,
    PRIMARY KEY (sync_name, seq)
);

-- digest_delta names the keys whose member row was inserted, changed or
-- deleted since the last compaction, by fingerprint; their state is read
-- from members. Every write to members adds its keys here in the same
-- transaction. The migration's Go step fills it with the existing members.
CREATE TABLE digest_delta (
    sync_name TEXT NOT NULL,
    fp        BLOB NOT NULL,
    lead_key  TEXT NOT NULL COLLATE BINARY,
    PRIMARY KEY (sync_name, fp)
) WITHOUT ROWID;
