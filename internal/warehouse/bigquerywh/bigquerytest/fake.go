// Package bigquerytest is an in-process fake of the BigQuery REST API, for
// testing listsync's BigQuery warehouse through the official Go client
// (cloud.google.com/go/bigquery) without a Google Cloud project.
//
// The fake cannot run SQL: tests register a result set or an error for an
// exact SQL text, and the fake serves it the way the service does, from the
// calls the client really makes:
//
//   - jobs.query (POST projects/{p}/queries), the client's fast path, answering
//     with the schema, the first page of rows and a page token;
//   - jobs.getQueryResults (GET projects/{p}/queries/{jobId}) with pageToken,
//     startIndex and maxResults, including the maxResults=0 status polls the
//     client sends while a job is still running;
//   - jobs.insert (POST projects/{p}/jobs), which the client uses instead of
//     jobs.query when the query sets a job timeout or a job ID, dry runs
//     included;
//   - jobs.get (GET projects/{p}/jobs/{jobId});
//   - the OAuth 2.0 token endpoint (POST /token) that a service account key
//     whose token_uri points at the fake exchanges its signed JWT with.
//
// Paths are accepted with and without the /bigquery/v2 prefix. Errors use the
// service's JSON error shape, totalRows and every cell travel as JSON strings,
// and TIMESTAMP cells honour formatOptions.useInt64Timestamp. Rows are
// produced on the fly by each Result's Row function and streamed into the
// response, so a million-row result needs no memory. Every request is
// recorded so that tests can assert on what the client sent.
package bigquerytest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// PageBytesDefault is the default size cap of one page of rows: the service
// limits a response to about 10 MB.
const PageBytesDefault = 10 << 20

// LocationDefault is the location of jobs whose request names none.
const LocationDefault = "US"

// Config configures a Fake. The zero value behaves like the service.
type Config struct {
	// PageRows caps the rows of a page when the request sets no maxResults.
	// Zero means no cap beyond PageBytes, as in the service.
	PageRows int
	// PageBytes caps the encoded size of a page's rows (at least one row
	// is always sent). Zero means PageBytesDefault.
	PageBytes int
	// Location is the location of jobs whose request names none. Empty
	// means LocationDefault.
	Location string
	// Token, when set, is the only OAuth 2.0 access token the API accepts:
	// every API call must carry "Authorization: Bearer <Token>", else it
	// is answered 401 as the service does. The token endpoint hands it out.
	Token string
}

// Error is a failure the fake answers a registered SQL text with, in the
// service's error shape.
type Error struct {
	// Code is the HTTP status, e.g. 400, 403 or 404.
	Code int
	// Reason is the error reason, e.g. invalidQuery, notFound, accessDenied.
	Reason string
	// Message is the service's message, e.g.
	// "Syntax error: Unexpected identifier \"SELEC\" at [1:1]".
	Message string
	// Location is the errors[0].location field; "q" when empty.
	Location string
	// Status is the gRPC-style status name; derived from Code when empty.
	Status string
	// Request makes jobs.insert itself fail, as for a caller who may not
	// create jobs at all. Otherwise jobs.insert creates a job that fails,
	// and the error is answered by jobs.getQueryResults, as for a query
	// that does not compile. jobs.query always fails the request itself.
	Request bool
}

// Request is one request the fake received.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the URL path, as sent.
	Path string
	// Query holds the URL query parameters.
	Query url.Values
	// Header holds the request headers.
	Header http.Header
	// Body is the request body.
	Body []byte
}

// Fake is the fake BigQuery API; it is an http.Handler. It is safe for
// concurrent use.
type Fake struct {
	cfg Config

	mu      sync.Mutex
	results map[string]*Result
	errs    map[string]Error
	jobs    map[string]*job
	reqs    []Request
	nextID  int
}

// job is the state of one query job.
type job struct {
	project, id, location string
	sql                   string
	res                   *Result
	err                   *Error
	pending               int
	config                json.RawMessage
	created               time.Time
}

// New returns a Fake configured by cfg.
func New(cfg Config) *Fake {
	if cfg.PageBytes <= 0 {
		cfg.PageBytes = PageBytesDefault
	}
	if cfg.Location == "" {
		cfg.Location = LocationDefault
	}
	return &Fake{
		cfg:     cfg,
		results: make(map[string]*Result),
		errs:    make(map[string]Error),
		jobs:    make(map[string]*job),
	}
}

// NewServer starts a Fake on an httptest.Server that is closed when the test
// ends, and returns the fake and the server's base URL.
func NewServer(tb testing.TB, cfg Config) (*Fake, string) {
	tb.Helper()
	f := New(cfg)
	ts := httptest.NewServer(f)
	tb.Cleanup(ts.Close)
	return f, ts.URL
}

// AddResult registers the result set answered for the exact SQL text sql,
// replacing any earlier registration. It panics when r is malformed, which
// is a mistake in the test.
func (f *Fake) AddResult(sql string, r Result) {
	if err := r.validate(); err != nil {
		panic(fmt.Sprintf("bigquerytest: registering %q: %v", sql, err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.errs, sql)
	f.results[sql] = &r
}

// AddError registers the error answered for the exact SQL text sql,
// replacing any earlier registration.
func (f *Fake) AddError(sql string, e Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.results, sql)
	f.errs[sql] = e
}

// Requests returns a copy of the requests received so far, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Request, len(f.reqs))
	copy(out, f.reqs)
	return out
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, Request{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.Query(),
		Header: r.Header.Clone(),
		Body:   body,
	})
	f.mu.Unlock()

	if r.Method == http.MethodPost && r.URL.Path == "/token" {
		f.token(w, body)
		return
	}
	if f.cfg.Token != "" && r.Header.Get("Authorization") != "Bearer "+f.cfg.Token {
		writeError(w, Error{
			Code:     http.StatusUnauthorized,
			Reason:   "authError",
			Message:  "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
			Location: "Authorization",
		}, "header")
		return
	}

	path := strings.TrimPrefix(r.URL.Path, "/bigquery/v2")
	seg := strings.Split(strings.Trim(path, "/"), "/")
	if len(seg) < 3 || seg[0] != "projects" || seg[1] == "" {
		notFound(w, "URL "+r.URL.Path)
		return
	}
	project := seg[1]
	switch {
	case len(seg) == 3 && seg[2] == "queries" && r.Method == http.MethodPost:
		f.query(w, r, project, body)
	case len(seg) == 4 && seg[2] == "queries" && r.Method == http.MethodGet:
		f.getQueryResults(w, r, project, seg[3])
	case len(seg) == 3 && seg[2] == "jobs" && r.Method == http.MethodPost:
		f.insert(w, project, body)
	case len(seg) == 4 && seg[2] == "jobs" && r.Method == http.MethodGet:
		f.get(w, r, project, seg[3])
	default:
		notFound(w, "URL "+r.URL.Path)
	}
}

// token answers the OAuth 2.0 token endpoint: any JWT-bearer grant gets the
// configured token.
func (f *Fake) token(w http.ResponseWriter, body []byte) {
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("assertion") == "" ||
		form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid grant: expected a JWT bearer assertion."}`)
		return
	}
	// The assertion is a JWT signed with the key; the fake cannot check
	// the signature but checks the claims the service would.
	var claims struct {
		Iss   string `json:"iss"`
		Aud   string `json:"aud"`
		Scope string `json:"scope"`
		Exp   int64  `json:"exp"`
	}
	parts := strings.Split(form.Get("assertion"), ".")
	var payload []byte
	if len(parts) == 3 {
		payload, err = base64.RawURLEncoding.DecodeString(parts[1])
	}
	if len(parts) != 3 || err != nil || json.Unmarshal(payload, &claims) != nil ||
		claims.Iss == "" || claims.Aud == "" || claims.Exp < time.Now().Unix() ||
		!(strings.Contains(claims.Scope, "/auth/bigquery") || strings.Contains(claims.Scope, "/auth/cloud-platform")) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT: expected iss, aud, an unexpired exp and a BigQuery scope."}`)
		return
	}
	tok := f.cfg.Token
	if tok == "" {
		tok = "fake-access-token"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   3600,
	})
}

// queryRequest is the body of jobs.query, as far as the fake reads it.
type queryRequest struct {
	Query         string `json:"query"`
	Location      string `json:"location"`
	UseLegacySQL  *bool  `json:"useLegacySql"`
	MaxResults    *int64 `json:"maxResults"`
	FormatOptions struct {
		UseInt64Timestamp bool `json:"useInt64Timestamp"`
	} `json:"formatOptions"`
}

// query answers jobs.query.
func (f *Fake) query(w http.ResponseWriter, r *http.Request, project string, body []byte) {
	var req queryRequest
	if err := json.Unmarshal(body, &req); err != nil {
		invalid(w, "Invalid JSON payload received. "+err.Error())
		return
	}
	// The API's default is legacy SQL, which the fake cannot pretend to
	// speak; the Go client always asks for standard SQL.
	if req.UseLegacySQL == nil || *req.UseLegacySQL {
		invalid(w, "bigquerytest: legacy SQL is not supported; set useLegacySql to false")
		return
	}
	j, e := f.newJob(jobSpec{project: project, location: req.Location, sql: req.Query})
	if e != nil {
		writeError(w, *e, "other")
		return
	}
	f.mu.Lock()
	if j.pending > 0 {
		j.pending--
		f.mu.Unlock()
		writeJSON(w, map[string]any{
			"kind":         "bigquery#queryResponse",
			"jobReference": j.ref(),
			"jobComplete":  false,
		})
		return
	}
	f.mu.Unlock()
	max := int64(-1)
	if req.MaxResults != nil {
		max = *req.MaxResults
	}
	f.writePage(w, r, j, "bigquery#queryResponse", 0, max, req.FormatOptions.UseInt64Timestamp)
}

// jobSpec is what a request asks of a new job.
type jobSpec struct {
	project, id, location, sql string
	config                     json.RawMessage
	// keepFailed creates a job that failed with the query's error, as
	// jobs.insert does, instead of failing the request, as jobs.query does.
	keepFailed bool
}

// newJob looks the SQL up and creates its job. It returns the error to
// answer instead: the query's (see jobSpec.keepFailed) or a duplicate ID.
func (f *Fake) newJob(s jobSpec) (*job, *Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.location == "" {
		s.location = f.cfg.Location
	}
	if s.id == "" {
		f.nextID++
		s.id = fmt.Sprintf("job_fake%06d", f.nextID)
	} else if _, dup := f.jobs[s.project+"/"+s.id]; dup {
		return nil, &Error{Code: http.StatusConflict, Reason: "duplicate",
			Message: fmt.Sprintf("Already Exists: Job %s:%s.%s", s.project, s.location, s.id)}
	}
	res, ok := f.results[s.sql]
	var jerr *Error
	if !ok {
		e, found := f.errs[s.sql]
		if !found {
			e = Error{
				Code:    http.StatusBadRequest,
				Reason:  "invalidQuery",
				Message: "bigquerytest: no result is registered for this query: " + s.sql,
			}
		}
		if !s.keepFailed || e.Request {
			return nil, &e
		}
		jerr = &e
	}
	j := &job{
		project:  s.project,
		id:       s.id,
		location: s.location,
		sql:      s.sql,
		res:      res,
		err:      jerr,
		config:   s.config,
		created:  time.Now(),
	}
	if res != nil {
		j.pending = res.Pending
	}
	f.jobs[s.project+"/"+s.id] = j
	return j, nil
}

func (j *job) ref() map[string]string {
	return map[string]string{"projectId": j.project, "jobId": j.id, "location": j.location}
}

// findJob returns the job a jobs.getQueryResults or jobs.get names, or
// answers 404 as the service does, also when the location is wrong.
func (f *Fake) findJob(w http.ResponseWriter, r *http.Request, project, id string) *job {
	f.mu.Lock()
	j := f.jobs[project+"/"+id]
	f.mu.Unlock()
	loc := r.URL.Query().Get("location")
	if j == nil || (loc != "" && !strings.EqualFold(loc, j.location)) {
		if loc == "" {
			loc = f.cfg.Location
		}
		notFound(w, fmt.Sprintf("Job %s:%s.%s", project, loc, id))
		return nil
	}
	return j
}

// getQueryResults answers jobs.getQueryResults.
func (f *Fake) getQueryResults(w http.ResponseWriter, r *http.Request, project, id string) {
	j := f.findJob(w, r, project, id)
	if j == nil {
		return
	}
	if j.err != nil {
		writeError(w, *j.err, "other")
		return
	}
	q := r.URL.Query()
	f.mu.Lock()
	if j.pending > 0 {
		j.pending--
		f.mu.Unlock()
		writeJSON(w, map[string]any{
			"kind":         "bigquery#getQueryResultsResponse",
			"jobReference": j.ref(),
			"jobComplete":  false,
		})
		return
	}
	f.mu.Unlock()
	max := int64(-1)
	if s := q.Get("maxResults"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			invalid(w, "Invalid value for maxResults: "+s)
			return
		}
		max = n
	}
	var start int64
	if tok := q.Get("pageToken"); tok != "" {
		n, err := strconv.ParseInt(tok, 10, 64)
		if err != nil || n < 0 {
			invalid(w, "Invalid page token: "+tok)
			return
		}
		start = n
	} else if s := q.Get("startIndex"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			invalid(w, "Invalid value for startIndex: "+s)
			return
		}
		start = n
	}
	int64TS := q.Get("formatOptions.useInt64Timestamp") == "true"
	f.writePage(w, r, j, "bigquery#getQueryResultsResponse", start, max, int64TS)
}

// writePage streams one page of j's rows from row start, at most max rows
// (max < 0: no limit beyond the fake's page caps).
func (f *Fake) writePage(w http.ResponseWriter, r *http.Request, j *job, kind string, start, max int64, int64TS bool) {
	res := j.res
	if start > res.NumRows {
		invalid(w, fmt.Sprintf("Invalid start index %d: the result has %d rows", start, res.NumRows))
		return
	}
	limit := res.NumRows - start
	if max >= 0 && max < limit {
		limit = max
	} else if max < 0 && f.cfg.PageRows > 0 && int64(f.cfg.PageRows) < limit {
		limit = int64(f.cfg.PageRows)
	}
	if limit > 0 && res.PageDelay > 0 {
		if !sleep(r.Context(), res.PageDelay) {
			return
		}
	}

	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	bw := bufio.NewWriterSize(w, 64<<10)
	b := make([]byte, 0, 4096)
	b = append(b, `{"kind":"`...)
	b = append(b, kind...)
	b = append(b, `","jobReference":`...)
	ref, _ := json.Marshal(j.ref())
	b = append(b, ref...)
	b = append(b, `,"schema":`...)
	b = appendSchema(b, res.Schema)
	b = append(b, `,"totalRows":"`...)
	b = strconv.AppendInt(b, res.NumRows, 10)
	b = append(b, `","totalBytesProcessed":"0","cacheHit":false,"jobComplete":true`...)
	_, _ = bw.Write(b)

	vals := make([]any, len(res.Schema))
	written, size := int64(0), 0
	for written < limit && (written == 0 || size < f.cfg.PageBytes) {
		if written == 0 {
			_, _ = bw.WriteString(`,"rows":[`)
		} else {
			_ = bw.WriteByte(',')
		}
		clear(vals)
		res.Row(start+written, vals)
		var err error
		b, err = appendRow(b[:0], res.Schema, vals, int64TS)
		if err != nil {
			// A malformed row is a mistake in the test: fail loudly in a
			// way the client reports.
			panic(fmt.Sprintf("bigquerytest: encoding row %d of %q: %v", start+written, j.sql, err))
		}
		if _, err := bw.Write(b); err != nil {
			return // the client went away
		}
		size += len(b)
		written++
	}
	if written > 0 {
		_ = bw.WriteByte(']')
	}
	if next := start + written; max != 0 && next < res.NumRows {
		_, _ = bw.WriteString(`,"pageToken":"` + strconv.FormatInt(next, 10) + `"`)
	}
	_, _ = bw.WriteString("}")
	_ = bw.Flush()
}

// insertRequest is the body of jobs.insert, as far as the fake reads it.
type insertRequest struct {
	JobReference struct {
		JobID    string `json:"jobId"`
		Location string `json:"location"`
	} `json:"jobReference"`
	Configuration json.RawMessage `json:"configuration"`
}

// jobConfig is the part of a job's configuration the fake reads.
type jobConfig struct {
	DryRun bool `json:"dryRun"`
	Query  *struct {
		Query        string `json:"query"`
		UseLegacySQL *bool  `json:"useLegacySql"`
	} `json:"query"`
}

// insert answers jobs.insert.
func (f *Fake) insert(w http.ResponseWriter, project string, body []byte) {
	var req insertRequest
	var cfg jobConfig
	if err := json.Unmarshal(body, &req); err != nil {
		invalid(w, "Invalid JSON payload received. "+err.Error())
		return
	}
	if err := json.Unmarshal(req.Configuration, &cfg); err != nil || cfg.Query == nil {
		invalid(w, "bigquerytest: only query jobs are supported")
		return
	}
	if cfg.Query.UseLegacySQL == nil || *cfg.Query.UseLegacySQL {
		invalid(w, "bigquerytest: legacy SQL is not supported; set useLegacySql to false")
		return
	}
	if cfg.DryRun {
		f.dryRun(w, project, req.JobReference.Location, cfg.Query.Query, req.Configuration)
		return
	}
	j, e := f.newJob(jobSpec{
		project:    project,
		id:         req.JobReference.JobID,
		location:   req.JobReference.Location,
		sql:        cfg.Query.Query,
		config:     req.Configuration,
		keepFailed: true,
	})
	if e != nil {
		writeError(w, *e, "other")
		return
	}
	writeJSON(w, f.jobResource(j))
}

// dryRun answers a dry-run jobs.insert: the query is checked, not run, and
// no job is kept. Any SQL without a registered error passes the check.
func (f *Fake) dryRun(w http.ResponseWriter, project, location, sql string, config json.RawMessage) {
	f.mu.Lock()
	e, failed := f.errs[sql]
	f.mu.Unlock()
	if failed {
		writeError(w, e, "other")
		return
	}
	if location == "" {
		location = f.cfg.Location
	}
	writeJSON(w, map[string]any{
		"kind":          "bigquery#job",
		"jobReference":  map[string]string{"projectId": project, "location": location},
		"configuration": config,
		"status":        map[string]any{"state": "DONE"},
		"statistics": map[string]any{
			"creationTime":        strconv.FormatInt(time.Now().UnixMilli(), 10),
			"totalBytesProcessed": "0",
			"query":               map[string]any{"totalBytesProcessed": "0", "statementType": "SELECT"},
		},
	})
}

// get answers jobs.get.
func (f *Fake) get(w http.ResponseWriter, r *http.Request, project, id string) {
	j := f.findJob(w, r, project, id)
	if j == nil {
		return
	}
	writeJSON(w, f.jobResource(j))
}

// jobResource returns the job resource of j, counting as one status check.
func (f *Fake) jobResource(j *job) map[string]any {
	f.mu.Lock()
	state := "DONE"
	if j.pending > 0 {
		j.pending--
		state = "RUNNING"
	}
	f.mu.Unlock()
	config := j.config
	if config == nil {
		config, _ = json.Marshal(map[string]any{"query": map[string]any{"query": j.sql, "useLegacySql": false}})
	}
	status := map[string]any{"state": state}
	if j.err != nil {
		ep := errorProto(*j.err, "other")
		status["errorResult"] = ep
		status["errors"] = []any{ep}
	}
	ms := strconv.FormatInt(j.created.UnixMilli(), 10)
	stats := map[string]any{"creationTime": ms, "startTime": ms}
	if state == "DONE" {
		stats["endTime"] = strconv.FormatInt(time.Now().UnixMilli(), 10)
		stats["query"] = map[string]any{"totalBytesProcessed": "0", "statementType": "SELECT"}
	}
	return map[string]any{
		"kind":          "bigquery#job",
		"id":            fmt.Sprintf("%s:%s.%s", j.project, j.location, j.id),
		"jobReference":  j.ref(),
		"configuration": config,
		"status":        status,
		"statistics":    stats,
		"user_email":    "fake@bigquerytest.invalid",
	}
}

// statusNames maps HTTP codes to the status names in Google's error shape.
var statusNames = map[int]string{
	400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
	404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
	500: "INTERNAL", 501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

func errorProto(e Error, locationType string) map[string]any {
	loc := e.Location
	if loc == "" {
		loc = "q"
	}
	ep := map[string]any{"reason": e.Reason, "message": e.Message, "location": loc}
	if locationType != "" {
		ep["locationType"] = locationType
	}
	if e.Reason == "" {
		ep["reason"] = "invalid"
	}
	return ep
}

// writeError answers e in Google's JSON error shape.
func writeError(w http.ResponseWriter, e Error, locationType string) {
	status := e.Status
	if status == "" {
		status = statusNames[e.Code]
	}
	if e.Code == 0 {
		e.Code = http.StatusBadRequest
	}
	ep := errorProto(e, locationType)
	ep["domain"] = "global"
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(e.Code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code":    e.Code,
		"message": e.Message,
		"errors":  []any{ep},
		"status":  status,
	}})
}

func invalid(w http.ResponseWriter, msg string) {
	writeError(w, Error{Code: http.StatusBadRequest, Reason: "invalid", Message: msg}, "other")
}

func notFound(w http.ResponseWriter, what string) {
	writeError(w, Error{Code: http.StatusNotFound, Reason: "notFound", Message: "Not found: " + what}, "other")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

// sleep waits for d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
