-- The ledger digest (see digest.go): what ScanDigest reads instead of the
-- members, one bytea per ~16,384 members.
--
-- listsync_digest_chunks is the compacted digest: chunks of entries sorted
-- by fingerprint, seq order continuing fingerprint order. A chunk (about
-- 1 MiB) is stored in parts of 7,900 bytes, one row each, which stay in
-- their heap page (toast_tuple_target): Postgres reads 64 MB of such rows in
-- about 30 ms, and the same bytes TOASTed in 1 MiB values in 200 ms. Should
-- a row grow past the target (a very long sync name), it is moved out of
-- line uncompressed (EXTERNAL): fingerprints and hashes do not compress.
CREATE TABLE listsync_digest_chunks (
    sync_name text    NOT NULL,
    seq       bigint  NOT NULL,
    part      integer NOT NULL,
    data      bytea   NOT NULL,
    PRIMARY KEY (sync_name, seq, part)
) WITH (toast_tuple_target = 8160);
ALTER TABLE listsync_digest_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- listsync_digest_delta names the keys whose member row was inserted,
-- changed or deleted since the last compaction, by fingerprint; their state
-- is read from listsync_members. Every write to the members adds its keys
-- here in the same transaction, or bumps the version of a key already here,
-- so that a compaction deletes only the rows it folded as it read them.
CREATE TABLE listsync_digest_delta (
    sync_name text   NOT NULL,
    fp        bytea  NOT NULL,
    lead_key  text   COLLATE "C" NOT NULL,
    version   bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (sync_name, fp)
);

-- The members of an existing ledger are all changed as far as the digest
-- knows: the first compaction folds them. The fingerprint is
-- state.Fingerprint: the first 16 bytes of the SHA-256 of the key's UTF-8.
INSERT INTO listsync_digest_delta (sync_name, fp, lead_key)
SELECT sync_name, substring(sha256(convert_to(lead_key, 'UTF8')) from 1 for 16), lead_key
FROM listsync_members;
