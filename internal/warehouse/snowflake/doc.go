// Package snowflake runs listsync models on Snowflake, through the official
// driver github.com/snowflakedb/gosnowflake and database/sql.
//
// # Connecting
//
// [New] takes a [Config]: the account, the user, and either a password or an
// RSA private key (key-pair authentication, which Snowflake recommends for
// services; PKCS#8, unencrypted or encrypted with a passphrase as OpenSSL's
// `pkcs8 -topk8 -v2` writes it), plus the role, warehouse, database and schema
// the sessions use. Host, Port and Protocol override the address derived from
// the account, for private link and for tests. New does not contact
// Snowflake; the first query or [Warehouse.Ping] logs in. Each database/sql
// connection is one Snowflake session; the pool keeps at most
// Config.MaxOpenConns of them and closes (logs out) those idle for half an
// hour, long before Snowflake would expire them. Errors never contain the
// password or the key.
//
// # Result format: Arrow
//
// Results are read in Arrow, the driver's default and the cheaper format
// for large results: Snowflake ships typed columnar chunks instead of JSON
// arrays of strings. The sessions set GO_QUERY_RESULT_FORMAT=ARROW at login,
// so that an account or user default of JSON cannot switch production to a
// different decoder than the one the tests exercise. The fake in
// snowflaketest speaks Arrow the way Snowflake does (the first rows inline as
// base64 Arrow IPC, the rest as chunk downloads, NUMBER in the narrowest
// integer width, timestamps as scaled integers or epoch/fraction/time zone
// structs), so every test runs gosnowflake's production decoder.
//
// # Streaming
//
// A query is run through gosnowflake's Arrow batch interface (on a connection
// of the database/sql pool) rather than database/sql's Rows.Next. The row
// interface downloads and decodes up to ten chunks ahead of the reader (a
// process-wide driver setting), which holds most of a large result in
// memory; with batches, listsync fetches the chunks itself, one ahead of the
// one being read, and frees each chunk once read. Memory is bounded by three
// chunks whatever the row count, and no per-value text formatting happens.
// gosnowflake still does the login, the query, the chunk downloads and the
// decoding of Snowflake's encodings (timestamp structs, time zones); rows only
// apply NUMBER scales and turn plain Arrow values into Go values.
//
// # Values
//
// Values are normalised from the column types: NUMBER with scale 0 to int64
// (beyond int64's range, float64), NUMBER with a scale to int64 when the
// value is whole and float64 otherwise (the seam's
// warehouse.NormalizeDecimal rule, shared by every backend), FLOAT to
// float64, VARCHAR and semi-structured values (VARIANT, OBJECT, ARRAY, as
// JSON text) to string, BOOLEAN to bool, DATE and TIMESTAMP_NTZ/LTZ/TZ to
// time.Time in UTC with microsecond precision (an NTZ value's wall clock is
// read as UTC; microseconds, unlike nanoseconds, span every year Snowflake
// stores), TIME to "15:04:05.999999999" text and BINARY to string.
//
// # Read-only models and timeouts
//
// Snowflake has no per-statement READ ONLY transaction. What listsync
// guarantees itself: the model is checked before it runs
// (warehouse.CheckParams with Snowflake's lexical rules) to be a single
// SELECT or WITH query without a data-modifying clause, and it is sent with
// MULTI_STATEMENT_COUNT=1 so that Snowflake refuses a second statement even if
// the check were fooled. That catches mistakes; it is not a security
// boundary, because a SELECT can still call a procedure or function with side
// effects. Run listsync with a role that holds only USAGE on its warehouse,
// database and schemas and SELECT on the tables its models read.
//
// QueryParams.Timeout bounds the query and the reading of its rows: when it
// passes, gosnowflake sends Snowflake an abort request for a query still
// running and stops downloading chunks. Config.StatementTimeout sets
// STATEMENT_TIMEOUT_IN_SECONDS for the sessions as well, a bound Snowflake
// enforces by itself, which holds even if listsync dies mid-query.
// Every query carries QUERY_TAG "listsync:<model>", so it can be found in
// Snowflake's query history.
//
// # Errors
//
// Driver errors are mapped onto the seam's sentinels, with Snowflake's own
// message, error number, SQLSTATE and query ID in the message:
//
//   - compilation and execution errors (001003 syntax error, 002003 object
//     does not exist or not authorized, 000904 invalid identifier, …) are
//     warehouse.ErrSQL, with the line and column when Snowflake reports them;
//   - 390100 (wrong user or password), 390144 (invalid JWT, i.e. the key does
//     not match the user's registered public key) and the rest of the 39xxxx
//     login range are warehouse.ErrAuth;
//   - 390189 (role not granted), 390201 (database, schema or warehouse in the
//     configuration does not exist or is not authorized), 000606 (no usable
//     warehouse) and 003001 / SQLSTATE 42501 (insufficient privileges) are
//     warehouse.ErrPermission;
//   - 000630 (statement timeout) and a passed QueryParams.Timeout are
//     warehouse.ErrTimeout; a canceled context stays context.Canceled;
//   - network failures and gosnowflake's transport errors (26xxxx) are
//     warehouse.ErrConnect;
//   - 000008 (more than one statement) is warehouse.ErrInvalidModel.
//
// gosnowflake logs through its own process-wide logger (to stderr, errors
// only by default); this package leaves it alone, since changing it would
// affect every user of the driver in the process.
package snowflake
