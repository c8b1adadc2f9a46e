-- Roles and the state database of the docker-compose setup. Runs once, when
-- the Postgres volume is first initialised (docker-entrypoint-initdb.d).
--
-- listsync_reader may only read the warehouse's `app` schema: models are
-- read-only, and the role makes sure of it. listsync owns the state store's
-- database, whose schema listsync migrates itself on start.
--
-- The passwords are for this local setup only; compose passes them in from
-- the environment (see docker-compose.yml).
\set reader_password `echo "${LISTSYNC_READER_PASSWORD:-reader-local-only}"`
\set state_password `echo "${LISTSYNC_STATE_PASSWORD:-state-local-only}"`

CREATE ROLE listsync_reader LOGIN PASSWORD :'reader_password';
CREATE ROLE listsync LOGIN PASSWORD :'state_password';
CREATE DATABASE listsync_state OWNER listsync;
