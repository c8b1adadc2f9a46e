// Package bigquerywh is listsync's BigQuery warehouse: it runs models as
// standard SQL query jobs through the official client,
// cloud.google.com/go/bigquery, and streams their rows. It is named so that
// it does not clash with the client's package.
//
// # Connecting
//
// [New] takes a [Config]: the project the jobs run in, their location, and
// credentials from a file (a service account key or any other credentials
// JSON, whose declared type is honoured) or Application Default Credentials
// when none is given. Endpoint points the client elsewhere, for Private
// Service Connect or tests; NoAuth, for emulators and fakes only, sends no
// credentials at all and must be asked for explicitly.
//
// # Reading rows
//
// [Warehouse.Query] reads results through the REST API's jobs.query and
// jobs.getQueryResults, one page (at most about 10 MB) at a time, so memory
// is bounded by a page whatever the row count. The BigQuery Storage Read API
// (client.EnableStorageReadClient) is deliberately not enabled: it would need
// gRPC and a second API and permission (bigquery.readsessions.create) for
// little gain at the row counts of a marketing list, and the REST pages are
// what the tests exercise, through the real client, against the fake in
// package bigquerytest. Turning it on would leave production reading rows by
// a path no test covers.
//
// Values are normalised as package warehouse promises: STRING, GEOGRAPHY and
// JSON become string; BYTES the string of its bytes; INTEGER int64; FLOAT
// float64; NUMERIC and BIGNUMERIC int64 when whole and within range, float64
// otherwise; BOOLEAN bool; TIMESTAMP time.Time in UTC; DATE time.Time at
// midnight UTC; DATETIME (which has no zone) time.Time read as UTC; TIME the
// string "15:04:05[.ffffff]"; INTERVAL its canonical text; RANGE
// "[start, end)"; NULL nil. REPEATED and RECORD (STRUCT, ARRAY) values become
// their JSON text, with RECORD fields in schema order.
//
// A positive QueryParams.Timeout bounds the whole query through the context,
// and the time left before the query's deadline (from the timeout or the
// caller's context) is also sent as the job's timeout (jobTimeoutMs), so that BigQuery
// stops a runaway job itself instead of leaving it running, and billed,
// after listsync gave up. Setting a job timeout makes the client create the
// job with jobs.insert rather than jobs.query; both paths are tested. Give
// every model a timeout: the client retries refused connections and 5xx
// answers until its context ends, so without a deadline an unreachable
// BigQuery stalls a run instead of failing it.
//
// # Models are read-only
//
// Every model is checked by the seam's CheckParams (DialectBigQuery) before
// it is sent: it must be a single query, not DML, DDL or a script. That check
// catches mistakes; the guarantee comes from the credentials: give listsync a
// service account with only the BigQuery Job User role on the project it
// runs jobs in and BigQuery Data Viewer on the datasets its models read, and
// BigQuery itself refuses any write.
//
// # Errors
//
// Errors are *warehouse.Error values whose Kind is one of the seam's
// sentinels, chosen from the API's HTTP status and error reason: 401 is
// ErrAuth (as is a failure to obtain an access token); 403 accessDenied,
// quotaExceeded and billingNotEnabled are ErrPermission; 400 invalidQuery and
// invalid, 404 notFound (a dataset or table the model names) and
// resourcesExceeded are ErrSQL, carrying BigQuery's message and the
// "[line:column]" it reports as Line and Column; timeout, and the context's
// deadline, are ErrTimeout; refused connections, DNS failures and 5xx
// answers are ErrConnect. The client retries refused connections until the
// context ends; when its deadline ends them, the error is still ErrConnect.
package bigquerywh
