-- What the listsync_reader role of 01-roles.sql may do: read the `app`
-- schema, and nothing else. Models run in read-only transactions anyway;
-- this makes the database say so too.
GRANT USAGE ON SCHEMA app TO listsync_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA app TO listsync_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO listsync_reader;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
