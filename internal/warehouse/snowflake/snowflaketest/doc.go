// Package snowflaketest is an in-process fake of the Snowflake service that
// the real gosnowflake driver can log in to, query and download result chunks
// from, so that the snowflake backend is tested through the same driver code
// that runs in production.
//
// The fake speaks the driver's REST protocol as gosnowflake v1.19.1 uses it:
//
//   - POST /session/v1/login-request: password logins (LOGIN_NAME and
//     PASSWORD) and key-pair logins (AUTHENTICATOR SNOWFLAKE_JWT with an RS256
//     token whose issuer carries the public key's fingerprint). Failures are
//     answered as Snowflake answers them: HTTP 200, success false, code 390100
//     for wrong credentials, 390144 for a bad JWT, 390189 for a role the user
//     may not assume.
//   - POST /queries/v1/query-request: the Authorization header's session token
//     is checked; the SQL text is looked up among the results registered with
//     [Server.Register] (the fake cannot run SQL). A result is answered in
//     Arrow, Snowflake's default format: the rowtype, the first rows inline as
//     a base64 Arrow IPC stream (rowsetbase64), and the rest as chunks whose
//     URLs point back at the fake. Errors are answered as success false with
//     Snowflake's code, message and data.sqlState. A result registered with a
//     Delay is first answered "query in progress" (code 333333) and polled
//     through its getResultUrl, as long-running queries are.
//   - GET chunk URLs: each chunk is generated on the fly from the result's
//     row function and encoded as an Arrow IPC stream (gzipped when
//     [Config.Gzip] is set), so a result of millions of rows costs no memory
//     in the fake. The chunk headers the query response named are required,
//     and [Server.ExpireChunkURLs] makes the URLs already handed out expire
//     (HTTP 403), as presigned cloud-storage URLs do.
//   - POST /queries/v1/abort-request, POST /session?delete=true,
//     POST /session/heartbeat, POST /session/token-request (renewing a
//     session token that [Server.ExpireSessionTokens] expired, answered
//     390112 as Snowflake does after an hour) and POST /telemetry/send.
//
// The fake serves Arrow only; a login asking for JSON results fails the
// test.
//
// Everything the fake receives that matters to the backend is recorded
// (logins with their role, warehouse and session parameters, queries with
// their parameters, chunk downloads, aborts, open sessions) so tests can check
// what production code really sends. A request the fake does not understand
// fails the test at cleanup.
package snowflaketest
