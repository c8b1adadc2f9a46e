// Package emulator is an in-memory Marketo instance served over HTTP: the
// identity service, the Lead Database and Asset REST APIs for leads and
// static lists, bulk lead import and bulk lead extract, with Marketo's
// limits and optional, deterministic faults.
//
// listsync's tests use it through httptest in place of a Marketo sandbox,
// and users run it (cmd/marketo-emulator) to develop syncs locally. It is
// written from Adobe's documentation, independently of listsync's client in
// internal/marketo, and shares no code with it, so that a misreading in one
// is caught by the other.
//
//	em := emulator.New(emulator.Config{ClientID: "id", ClientSecret: "secret"})
//	defer em.Close()
//	ts := httptest.NewServer(em) // REST under /rest, bulk under /bulk, identity under /identity
//	folderID := em.CreateFolder("Audiences")
//	listID := em.CreateStaticList("Trial users", folderID)
//	ids := em.UpsertLeads([]map[string]string{{"email": "a@x.com", "firstName": "A"}})
//	em.AddListMembers(listID, ids...)
//	members := em.ListMembers(listID) // sorted by lead ID
//
// # Endpoints
//
// Every REST and bulk call needs "Authorization: Bearer <token>" (the
// deprecated access_token parameter, in the query string, a form body or a
// multipart field, is accepted too). Parameters may come in the query string
// or a form body, ids and filter values repeated or comma-joined, and a POST
// with _method=GET is served as a GET with its form body as the query.
//
// Identity (not counted against the limits):
//   - GET|POST /identity/oauth/token: grant_type=client_credentials,
//     client_id and client_secret in the query, a form body or HTTP basic
//     auth. The same token comes back, with its remaining expires_in, until
//     it expires. Bad credentials answer HTTP 401 {"error":"invalid_client"}.
//
// Lead Database:
//   - GET /rest/v1/lists/{id}.json; GET /rest/v1/lists.json (id, name,
//     programName, workspaceName filters; batchSize, nextPageToken). An
//     unknown list answers 1013.
//   - POST, DELETE /rest/v1/lists/{id}/leads.json: ids as "id" parameters or a
//     JSON body {"input":[{"id":..}]}, at most 300. Per-record statuses:
//     added (also for an existing member), removed, skipped with 1004 "Lead
//     not found" or 1015 "Lead not in list".
//   - GET /rest/v1/lists/{id}/leads.json (and the legacy /rest/v1/list/...):
//     members in ID order, batchSize at most 300, nextPageToken, fields.
//   - GET /rest/v1/lists/{id}/leads/ismember.json: memberof, notmemberof, or
//     skipped with 1004.
//   - GET /rest/v1/leads.json: filterType (id, email, the documented
//     searchable standard fields, or a custom field; others answer 1011),
//     filterValues (at most 300), fields, batchSize, nextPageToken; more than
//     1,000 matches answer 1003.
//   - POST /rest/v1/leads.json (Sync Leads): action createOrUpdate (default),
//     createOnly, updateOnly or createDuplicate; lookupField (default email;
//     id only with updateOnly); at most 300 records. Per-record statuses
//     created, updated or skipped with 1001 (invalid value, such as a bad
//     email), 1002 (no lookup value), 1004, 1005, 1006 (unknown field), 1007
//     (several leads match).
//   - GET /rest/v1/lead/{id}.json and GET /rest/v1/leads/describe.json.
//
// Asset (warnings are strings; a search that finds nothing answers success
// with the warning "No assets found for the given search criteria." and no
// result):
//   - GET /rest/asset/v1/staticList/{id}.json, GET .../staticList/byName.json.
//   - GET /rest/asset/v1/staticLists.json (folder, offset, maxReturn up to 200,
//     earliestUpdatedAt, latestUpdatedAt).
//   - POST /rest/asset/v1/staticLists.json: name and folder ({"id":N,
//     "type":"Folder"} or a bare id) in a form body or the query string. A
//     duplicate name answers 709 "Static List with the same name already
//     exists"; an unknown folder 710.
//   - POST /rest/asset/v1/staticList/{id}.json (rename, describe) and
//     .../staticList/{id}/delete.json (709 while an import or extract uses
//     the list).
//   - GET /rest/asset/v1/folder/byName.json (every exact match; type, root),
//     GET .../folder/{id}.json, GET and POST .../folders.json.
//
// Bulk import:
//   - POST /bulk/v1/leads.json: multipart part "file" (at most 10 MB, else
//     HTTP 413); format csv, tsv or ssv, lookupField and listId in the query
//     string or as multipart fields. An unknown column rejects the import
//     (1006). At most 10 imports wait, 2 of them importing (1016 beyond); an
//     import to a list that already has one waiting or importing answers
//     1019. Jobs go Queued → Importing → Complete (or Failed) at
//     Config.ImportRowsPerSec on Config.Now's clock, and apply their rows
//     when they complete: blank cells leave fields as they are, an invalid
//     email or value fails its row, a lookup matching several leads updates
//     the most recently updated one with a warning.
//   - GET /bulk/v1/leads/batch/{id}.json: status, numOfLeadsProcessed,
//     numOfRowsFailed, numOfRowsWithWarning, message.
//   - GET /bulk/v1/leads/batch/{id}/failures.json and .../warnings.json: the
//     rows in the import's format with an extra "Import Failure Reason" or
//     "Import Warning Reason" column.
//
// Bulk lead extract:
//   - POST /bulk/v1/leads/export/create.json: fields, format (CSV, TSV, SSV),
//     columnHeaderNames, and one filter: staticListId, staticListName, or a
//     createdAt/updatedAt range of at most 31 days (others answer 1035).
//   - POST .../export/{exportId}/enqueue.json: at most 10 queued, 2
//     processing (1029 "Too many jobs (10) in queue", "Job already queued",
//     "Export daily quota exceeded"). The job reads list membership when it
//     starts processing, and completes after Config.ExportProcessingTime.
//   - GET .../export/{exportId}/status.json, GET .../file.json (Range
//     requests answer 206 with Content-Range), POST .../cancel.json,
//     GET /bulk/v1/leads/export.json?status=...
//
// # Limits
//
// Per instance, configurable in Config (negative switches one off):
//   - URI over 8 KB: HTTP 414. Body over 1 MB (outside bulk import): HTTP 413.
//   - 100 calls per rolling 20 s: 606 "Max rate limit '100' exceeded with in
//     '20' secs".
//   - 10 calls in flight: 615 "Concurrent access limit '10' reached".
//   - 50,000 calls a day, reset at midnight CST: 607 "Daily quota reached".
//
// Identity calls, and calls answered 601, 602, 604, 605, 608 or 611, are not
// counted against the rate window or the quota; refused calls (606, 607,
// 615) are not counted either. The clock is Config.Now, so tests drive
// expiry, windows and bulk jobs without sleeping. Config.Latency adds a real
// delay to every call, which makes the concurrency limit bite.
//
// # Faults
//
// Off by default; set with Config.Faults or SetFaults. One generator seeded
// with Faults.Seed decides, in call order, which REST and bulk calls fail:
// Faults.Rate of them answer a kind drawn from Faults.Kinds: 604, 608, 611
// or 713 (as success:false envelopes; the call is not executed), HTTP 502 or
// 503 (before authentication), or "slow" (served normally after
// Faults.SlowDelay). Faults.TokenExpiryRate expires the token of that
// fraction of calls (602); ExpireTokens expires it at once.
// Faults.ImportFailureRate makes that fraction of bulk imports end Failed.
//
// # Inspection and seeding API
//
// Outside Marketo's namespace, without a token and not counted:
//   - GET /_emulator/stats: Stats as JSON (calls_total, rejected by code,
//     max_concurrency_seen, in_flight, calls_last_20s, daily_calls,
//     endpoints, leads, folders, lists, imports, exports).
//     POST /_emulator/stats/reset zeroes the call counters.
//   - POST /_emulator/folders {"name":"Audiences"[,"type":"Program"]} → {"id":N};
//     GET /_emulator/folders.
//   - POST /_emulator/lists {"name":"Demo","folderId":N} → {"id":N};
//     GET /_emulator/lists; DELETE /_emulator/lists/{id}.
//   - POST /_emulator/leads {"leads":[{"email":..,..}],"generate":N,"listId":L}:
//     upserts the given leads (by email) and generates N more
//     ("lead<ID>@example.com"), adding all to list L when given.
//   - GET /_emulator/lists/{id}/members; POST /_emulator/lists/{id}/members
//     {"ids":[..]}.
//   - GET, PUT /_emulator/faults {"rate":0.1,"seed":1,"kinds":["604","slow"],
//     "slowDelay":"2s","tokenExpiryRate":0,"importFailureRate":0}.
//   - POST /_emulator/expire-tokens; POST /_emulator/reset-quota.
//
// # Where Adobe's documentation is silent
//
// The emulator then follows what production clients rely on (see
// marketo-api.md in the project's reference): 709 for a duplicate list name,
// 1015 for removing a non-member, "added" for re-adding a member, 1013 for an
// unknown list in the Lead Database API and in bulk import, unknown import
// columns rejected at submission, "Invalid email format" as the failure
// reason of a bad email in an import, and failures.json with only its header
// when no row failed. Field values are stored as strings and typed (integer,
// boolean, float) only when rendered.
//
// # Scale
//
// State is in memory behind one mutex; every call is short. Leads are a
// slice indexed by ID plus a map by lower-cased email, a list's membership
// is a set plus a sorted ID slice (pages resume after the last ID, so paging
// a million-member list is linear), and bulk jobs advance lazily on the
// clock, so the emulator starts no goroutine of its own. Searches by fields
// other than id and email scan every lead.
package emulator
