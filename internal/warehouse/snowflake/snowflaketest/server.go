package snowflaketest

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config configures a fake Snowflake. Zero values take the defaults noted.
type Config struct {
	// Account is the account name logins must carry. Default "fakeacct".
	Account string
	// User is the login name (compared case-insensitively). Default
	// "listsync".
	User string
	// Password is the user's password. Default "secret".
	Password string
	// PublicKey, when set, is the user's registered RSA public key: logins
	// with AUTHENTICATOR SNOWFLAKE_JWT must carry a token signed with the
	// matching private key.
	PublicKey *rsa.PublicKey
	// Roles, when set, are the roles the user may log in with; any other
	// role is refused with code 390189. Empty allows any role.
	Roles []string
	// FirstChunkRows is how many rows travel inline in the query response.
	// Default 1000.
	FirstChunkRows int
	// ChunkRows is how many rows each downloaded chunk holds. Default 10000.
	ChunkRows int
	// Gzip compresses chunk bodies (without a Content-Encoding header, as
	// the cloud storage Snowflake uses serves them).
	Gzip bool
}

// Login is one login request the fake received.
type Login struct {
	// Account is ACCOUNT_NAME.
	Account string
	// User is LOGIN_NAME.
	User string
	// Authenticator is AUTHENTICATOR ("" for a password login).
	Authenticator string
	// Role, Warehouse, Database and Schema are the URL parameters the
	// driver sends them in.
	Role, Warehouse, Database, Schema string
	// SessionParameters are SESSION_PARAMETERS, keys upper case.
	SessionParameters map[string]any
	// Application is CLIENT_ENVIRONMENT.APPLICATION.
	Application string
	// Code is "" for a successful login, else the error code answered.
	Code string
}

// Query is one query request the fake received.
type Query struct {
	// SQL is sqlText.
	SQL string
	// Parameters are the request's statement parameters (e.g. QUERY_TAG,
	// MULTI_STATEMENT_COUNT).
	Parameters map[string]any
	// SessionID is the session the request was made in.
	SessionID int64
	// RequestID is the driver's requestId.
	RequestID string
}

// Stats counts what the fake served.
type Stats struct {
	// ChunkRequests is the number of chunk downloads served.
	ChunkRequests int64
	// MaxConcurrentChunks is the most chunk downloads in flight at once.
	MaxConcurrentChunks int64
	// Aborts is the number of abort-request calls.
	Aborts int64
	// Telemetry is the number of telemetry posts.
	Telemetry int64
	// Heartbeats is the number of heartbeat calls.
	Heartbeats int64
	// OpenSessions is the number of sessions logged in and not yet closed.
	OpenSessions int64
	// ClosedSessions is the number of sessions closed by the client.
	ClosedSessions int64
	// TokenRenewals is the number of session tokens renewed with a master
	// token.
	TokenRenewals int64
}

// Server is a running fake Snowflake.
type Server struct {
	// URL is the fake's base URL, e.g. "http://127.0.0.1:4711".
	URL string
	// Host and Port are URL's host and port.
	Host string
	Port int
	// Account, User and Password are the credentials the fake accepts.
	Account, User, Password string

	cfg Config
	ts  *httptest.Server

	mu         sync.Mutex
	results    map[string]*Result
	errs       map[string]Error
	sessions   map[string]*session // by token
	masters    map[string]*session // by master token
	queries    map[string]*query   // by query id
	byRequest  map[string]*query   // by request id
	logins     []Login
	received   []Query
	unexpected []string
	nextID     int64
	urlsExpire time.Time // chunk URLs of queries answered before this have expired

	chunkRequests atomic.Int64
	inFlight      atomic.Int64
	maxInFlight   atomic.Int64
	aborts        atomic.Int64
	telemetry     atomic.Int64
	heartbeats    atomic.Int64
	closed        atomic.Int64
	renewals      atomic.Int64
}

type session struct {
	id                                int64
	token, master                     string
	role, warehouse, database, schema string
	open                              bool
	expired                           bool // the session token has expired; the master token renews it
}

type query struct {
	id       string
	res      *Result
	answered time.Time
	ready    time.Time
	canceled bool
	session  *session
	chunkKey string
}

// NewServer starts a fake Snowflake that is closed when the test ends. At
// cleanup the test fails if the fake received a request it did not
// understand.
func NewServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	if cfg.Account == "" {
		cfg.Account = "fakeacct"
	}
	if cfg.User == "" {
		cfg.User = "listsync"
	}
	if cfg.Password == "" {
		cfg.Password = "secret"
	}
	if cfg.FirstChunkRows <= 0 {
		cfg.FirstChunkRows = 1000
	}
	if cfg.ChunkRows <= 0 {
		cfg.ChunkRows = 10000
	}
	s := &Server{
		Account:   cfg.Account,
		User:      cfg.User,
		Password:  cfg.Password,
		cfg:       cfg,
		results:   make(map[string]*Result),
		errs:      make(map[string]Error),
		sessions:  make(map[string]*session),
		masters:   make(map[string]*session),
		queries:   make(map[string]*query),
		byRequest: make(map[string]*query),
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	u, err := url.Parse(s.ts.URL)
	if err != nil {
		tb.Fatalf("snowflaketest: parsing server URL: %v", err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		tb.Fatalf("snowflaketest: splitting server address: %v", err)
	}
	s.URL, s.Host = s.ts.URL, host
	s.Port, err = strconv.Atoi(port)
	if err != nil {
		tb.Fatalf("snowflaketest: parsing server port: %v", err)
	}
	tb.Cleanup(func() {
		s.ts.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, u := range s.unexpected {
			tb.Errorf("snowflaketest: unexpected request: %s", u)
		}
	})
	return s
}

var spaces = regexp.MustCompile(`\s+`)

// normalizeSQL is how registered and received SQL texts are matched:
// surrounding space and a trailing semicolon are ignored, and every run of
// white space counts as one space.
func normalizeSQL(sql string) string {
	sql = strings.TrimSpace(sql)
	sql = strings.TrimSpace(strings.TrimSuffix(sql, ";"))
	return spaces.ReplaceAllString(sql, " ")
}

// Register makes the fake answer sql with res. It replaces an earlier
// registration of the same text.
func (s *Server) Register(sql string, res Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := normalizeSQL(sql)
	delete(s.errs, key)
	s.results[key] = &res
}

// RegisterError makes the fake answer sql with the error e.
func (s *Server) RegisterError(sql string, e Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := normalizeSQL(sql)
	delete(s.results, key)
	s.errs[key] = e
}

// Logins returns the login requests received so far.
func (s *Server) Logins() []Login {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Login(nil), s.logins...)
}

// Queries returns the query requests received so far.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.received...)
}

// Stats returns the fake's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	open := 0
	for _, se := range s.sessions {
		if se.open {
			open++
		}
	}
	s.mu.Unlock()
	return Stats{
		ChunkRequests:       s.chunkRequests.Load(),
		MaxConcurrentChunks: s.maxInFlight.Load(),
		Aborts:              s.aborts.Load(),
		Telemetry:           s.telemetry.Load(),
		Heartbeats:          s.heartbeats.Load(),
		OpenSessions:        int64(open),
		ClosedSessions:      s.closed.Load(),
		TokenRenewals:       s.renewals.Load(),
	}
}

// ExpireSessionTokens makes every open session's token expire, as Snowflake
// session tokens do after an hour: the next request with one is answered
// with code 390112, and the driver must renew it with its master token.
func (s *Server) ExpireSessionTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range s.sessions {
		se.expired = true
	}
}

// ExpireChunkURLs makes the chunk URLs of every query answered so far
// expire, as the presigned cloud-storage URLs Snowflake hands out do after a
// few hours: downloading them is refused with HTTP 403.
func (s *Server) ExpireChunkURLs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.urlsExpire = time.Now()
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/session/v1/login-request":
		s.handleLogin(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/queries/v1/query-request":
		s.handleQuery(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/queries/") && strings.HasSuffix(r.URL.Path, "/result"):
		s.handleResult(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/chunks/"):
		s.handleChunk(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/queries/v1/abort-request":
		s.handleAbort(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/session" && r.URL.Query().Get("delete") == "true":
		s.handleCloseSession(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/session/heartbeat":
		if _, ok := s.authorize(w, r); ok {
			s.heartbeats.Add(1)
			writeJSON(w, map[string]any{"success": true, "code": nil, "message": nil, "data": nil})
		}
	case r.Method == http.MethodPost && r.URL.Path == "/session/token-request":
		s.handleTokenRequest(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/telemetry/send":
		_, _ = io.Copy(io.Discard, r.Body)
		s.telemetry.Add(1)
		writeJSON(w, map[string]any{"success": true, "code": nil, "message": nil, "data": "Log Received"})
	default:
		s.mu.Lock()
		s.unexpected = append(s.unexpected, r.Method+" "+r.URL.String())
		s.mu.Unlock()
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// readBody reads a request body, gunzipping it when the driver compressed
// it.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if len(body) > 2 && body[0] == 0x1f && body[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	}
	return body, nil
}

type loginRequest struct {
	Data struct {
		AccountName       string         `json:"ACCOUNT_NAME"`
		LoginName         string         `json:"LOGIN_NAME"`
		Password          string         `json:"PASSWORD"`
		Authenticator     string         `json:"AUTHENTICATOR"`
		Token             string         `json:"TOKEN"`
		SessionParameters map[string]any `json:"SESSION_PARAMETERS"`
		ClientEnvironment struct {
			Application string `json:"APPLICATION"`
		} `json:"CLIENT_ENVIRONMENT"`
	} `json:"data"`
}

func loginFailure(code, message, authnMethod string) map[string]any {
	return map[string]any{
		"data": map[string]any{
			"nextAction":    nil,
			"pwdChangeInfo": nil,
			"inFlightCtx":   nil,
			"redirectUrl":   nil,
			"authnMethod":   authnMethod,
		},
		"code":    code,
		"message": message,
		"success": false,
		"headers": nil,
	}
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	var req loginRequest
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		http.Error(w, "bad login request", http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	d := req.Data
	login := Login{
		Account:           d.AccountName,
		User:              d.LoginName,
		Authenticator:     d.Authenticator,
		Role:              q.Get("roleName"),
		Warehouse:         q.Get("warehouse"),
		Database:          q.Get("databaseName"),
		Schema:            q.Get("schemaName"),
		SessionParameters: d.SessionParameters,
		Application:       d.ClientEnvironment.Application,
	}
	if f, _ := d.SessionParameters["GO_QUERY_RESULT_FORMAT"].(string); strings.EqualFold(f, "json") {
		// Snowflake would answer in JSON; this fake speaks Arrow only.
		s.mu.Lock()
		s.unexpected = append(s.unexpected, "login asking for JSON results (GO_QUERY_RESULT_FORMAT=JSON): the fake serves Arrow only")
		s.mu.Unlock()
	}
	var fail map[string]any
	switch {
	case !strings.EqualFold(d.AccountName, s.cfg.Account):
		// Snowflake routes by host name; a login for another account on
		// this host is refused like bad credentials.
		fail = loginFailure("390100", "Incorrect username or password was specified.", "USERNAME_PASSWORD")
	case strings.EqualFold(d.Authenticator, "SNOWFLAKE_JWT"):
		if err := s.checkJWT(d.Token); err != nil {
			fail = loginFailure("390144", "JWT token is invalid. ["+randomToken()[:8]+"]", "KEY_PAIR")
		}
	case d.Authenticator == "" || strings.EqualFold(d.Authenticator, "SNOWFLAKE"):
		if !strings.EqualFold(d.LoginName, s.cfg.User) || d.Password != s.cfg.Password {
			fail = loginFailure("390100", "Incorrect username or password was specified.", "USERNAME_PASSWORD")
		}
	default:
		fail = loginFailure("390100", "Incorrect username or password was specified.", d.Authenticator)
	}
	if fail == nil && login.Role != "" && len(s.cfg.Roles) > 0 && !containsFold(s.cfg.Roles, login.Role) {
		fail = loginFailure("390189",
			fmt.Sprintf("Role '%s' specified in the connect string does not exist or not authorized. Contact your local system administrator, or attempt to login with another role, e.g. PUBLIC.", strings.ToUpper(login.Role)),
			"USERNAME_PASSWORD")
	}
	if fail != nil {
		login.Code = fail["code"].(string)
		s.mu.Lock()
		s.logins = append(s.logins, login)
		s.mu.Unlock()
		writeJSON(w, fail)
		return
	}

	s.mu.Lock()
	s.logins = append(s.logins, login)
	s.nextID++
	se := &session{
		id:        1_000_000 + s.nextID,
		token:     "ver:1-hint:" + randomToken(),
		master:    "ver:1-hint:" + randomToken(),
		role:      cmpOr(strings.ToUpper(login.Role), "PUBLIC"),
		warehouse: strings.ToUpper(login.Warehouse),
		database:  strings.ToUpper(login.Database),
		schema:    strings.ToUpper(login.Schema),
		open:      true,
	}
	s.sessions[se.token] = se
	s.masters[se.master] = se
	s.mu.Unlock()

	writeJSON(w, map[string]any{
		"data": map[string]any{
			"masterToken":             se.master,
			"token":                   se.token,
			"validityInSeconds":       3600,
			"masterValidityInSeconds": 14400,
			"displayUserName":         strings.ToUpper(s.cfg.User),
			"serverVersion":           "9.99.0",
			"firstLogin":              false,
			"remMeToken":              nil,
			"remMeValidityInSeconds":  0,
			"healthCheckInterval":     45,
			"newClientForUpgrade":     nil,
			"sessionId":               se.id,
			"parameters": []map[string]any{
				// Snowflake's defaults: a session time zone that is not UTC
				// shows whether the client normalises times itself.
				{"name": "TIMEZONE", "value": "America/Los_Angeles"},
				{"name": "CLIENT_SESSION_KEEP_ALIVE", "value": false},
				{"name": "CLIENT_SESSION_KEEP_ALIVE_HEARTBEAT_FREQUENCY", "value": 3600},
				{"name": "CLIENT_PREFETCH_THREADS", "value": 4},
				{"name": "CLIENT_RESULT_CHUNK_SIZE", "value": 160},
			},
			"sessionInfo": map[string]any{
				"databaseName":  nullIfEmpty(se.database),
				"schemaName":    nullIfEmpty(se.schema),
				"warehouseName": nullIfEmpty(se.warehouse),
				"roleName":      se.role,
			},
		},
		"code":    nil,
		"message": nil,
		"success": true,
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// checkJWT verifies a key-pair login token the way Snowflake does: RS256
// signed by the user's key, issuer ACCOUNT.USER.SHA256:<fingerprint of the
// public key>, subject ACCOUNT.USER, not expired.
func (s *Server) checkJWT(token string) error {
	if s.cfg.PublicKey == nil {
		return errors.New("no public key registered for the user")
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) {
		return s.cfg.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired())
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(s.cfg.PublicKey)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(der)
	acct, user := strings.ToUpper(s.cfg.Account), strings.ToUpper(s.cfg.User)
	wantIss := acct + "." + user + ".SHA256:" + base64.StdEncoding.EncodeToString(sum[:])
	if iss, _ := claims["iss"].(string); iss != wantIss {
		return fmt.Errorf("issuer %q, want %q", iss, wantIss)
	}
	if sub, _ := claims["sub"].(string); sub != acct+"."+user {
		return fmt.Errorf("subject %q", sub)
	}
	return nil
}

// authorize checks the Authorization header and returns the session. It
// answers the request itself when the token is not a live session's.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (*session, bool) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, `Snowflake Token="`)
	token, ok2 := strings.CutSuffix(token, `"`)
	s.mu.Lock()
	se := s.sessions[token]
	s.mu.Unlock()
	if !ok || !ok2 || se == nil || !se.open {
		writeJSON(w, map[string]any{
			"data":    nil,
			"code":    "390111",
			"message": "Session no longer exists.  New login required to access the service.",
			"success": false,
		})
		return nil, false
	}
	s.mu.Lock()
	expired := se.expired
	s.mu.Unlock()
	if expired {
		writeJSON(w, map[string]any{
			"data":    nil,
			"code":    "390112",
			"message": "Your session has expired. Please login again.",
			"success": false,
		})
		return nil, false
	}
	return se, true
}

type queryRequest struct {
	SQLText    string         `json:"sqlText"`
	AsyncExec  bool           `json:"asyncExec"`
	SequenceID uint64         `json:"sequenceId"`
	Parameters map[string]any `json:"parameters"`
}

func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	se, ok := s.authorize(w, r)
	if !ok {
		return
	}
	body, err := readBody(r)
	var req queryRequest
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		http.Error(w, "bad query request", http.StatusBadRequest)
		return
	}
	requestID := r.URL.Query().Get("requestId")
	key := normalizeSQL(req.SQLText)

	s.mu.Lock()
	s.received = append(s.received, Query{SQL: req.SQLText, Parameters: req.Parameters, SessionID: se.id, RequestID: requestID})
	s.nextID++
	qid := fmt.Sprintf("01b2c3d4-0000-%04x-0000-%012x", se.id%0x10000, s.nextID)
	res, hasRes := s.results[key]
	qerr, hasErr := s.errs[key]
	if !hasRes && !hasErr && key == "SELECT 1" {
		// What database/sql's Ping runs through gosnowflake.
		res, hasRes = &Result{
			Columns: []Column{{Name: "1", Type: Fixed, Precision: 1, NotNull: true}},
			NumRows: 1,
			Row:     func(_ int, row []any) { row[0] = int64(1) },
		}, true
	}
	var q *query
	if hasRes {
		q = &query{id: qid, res: res, answered: time.Now(), ready: time.Now().Add(res.Delay), session: se, chunkKey: randomToken()}
		s.queries[qid] = q
		s.byRequest[requestID] = q
	}
	s.mu.Unlock()

	switch {
	case hasErr:
		writeJSON(w, queryError(qid, qerr))
	case !hasRes:
		writeJSON(w, queryError(qid, Error{
			Code:     "002003",
			SQLState: "42S02",
			Message:  "SQL compilation error:\nsnowflaketest: no result is registered for this SQL text: " + key,
		}))
	case res.Delay > 0:
		writeJSON(w, inProgress(qid))
	default:
		s.writeResult(w, q)
	}
}

func queryError(qid string, e Error) map[string]any {
	return map[string]any{
		"data": map[string]any{
			"internalError": false,
			"errorCode":     e.Code,
			"age":           0,
			"sqlState":      e.SQLState,
			"queryId":       qid,
			"line":          -1,
			"pos":           -1,
			"type":          "COMPILATION",
		},
		"code":    e.Code,
		"message": e.Message,
		"success": false,
		"headers": nil,
	}
}

func inProgress(qid string) map[string]any {
	return map[string]any{
		"data": map[string]any{
			"queryId":              qid,
			"getResultUrl":         "/queries/" + qid + "/result",
			"progressDesc":         nil,
			"queryAbortsAfterSecs": 300,
		},
		"code":    "333333",
		"message": "Query execution in progress. Query will be continued in the background.",
		"success": true,
	}
}

// handleResult serves getResultUrl polls of a query still "running": it
// holds the poll up to half a second, then answers the result or "in
// progress" again, as Snowflake's long poll does.
func (s *Server) handleResult(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r); !ok {
		return
	}
	qid := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/queries/"), "/result")
	s.mu.Lock()
	q := s.queries[qid]
	s.mu.Unlock()
	if q == nil {
		http.NotFound(w, r)
		return
	}
	wait := min(time.Until(q.ready), 500*time.Millisecond)
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	canceled := q.canceled
	s.mu.Unlock()
	switch {
	case canceled:
		writeJSON(w, queryError(qid, Error{Code: "000604", SQLState: "57014", Message: "SQL execution canceled"}))
	case time.Now().Before(q.ready):
		writeJSON(w, inProgress(qid))
	default:
		s.writeResult(w, q)
	}
}

func rowType(cols []Column) []map[string]any {
	out := make([]map[string]any, len(cols))
	for i, c := range cols {
		rt := map[string]any{
			"name":       c.Name,
			"database":   "",
			"schema":     "",
			"table":      "",
			"type":       string(c.Type),
			"precision":  nil,
			"scale":      nil,
			"length":     nil,
			"byteLength": nil,
			"nullable":   !c.NotNull,
			"collation":  nil,
		}
		switch c.Type {
		case Fixed:
			rt["precision"], rt["scale"] = c.precision(), c.scale()
		case Text:
			rt["length"], rt["byteLength"] = 16777216, 16777216
		case TimestampNTZ, TimestampLTZ, TimestampTZ:
			rt["precision"], rt["scale"] = 0, c.scale()
		}
		out[i] = rt
	}
	return out
}

func (s *Server) writeResult(w http.ResponseWriter, q *query) {
	res := q.res
	first := min(res.NumRows, s.cfg.FirstChunkRows)
	var rowset bytes.Buffer
	if first > 0 {
		enc := base64.NewEncoder(base64.StdEncoding, &rowset)
		if err := writeArrow(enc, res, 0, first); err != nil {
			writeJSON(w, queryError(q.id, Error{Code: "000603", SQLState: "XX000", Message: "snowflaketest: " + err.Error()}))
			return
		}
		_ = enc.Close()
	}
	chunks := []map[string]any{}
	for start := first; start < res.NumRows; start += s.cfg.ChunkRows {
		n := min(s.cfg.ChunkRows, res.NumRows-start)
		chunks = append(chunks, map[string]any{
			"url":              fmt.Sprintf("%s/chunks/%s/%d?sig=%s", s.URL, q.id, start, q.chunkKey[:16]),
			"rowCount":         n,
			"uncompressedSize": n * len(res.Columns) * 16,
			"compressedSize":   n * len(res.Columns) * 8,
		})
	}
	data := map[string]any{
		"parameters":         []map[string]any{{"name": "TIMEZONE", "value": "America/Los_Angeles"}},
		"rowtype":            rowType(res.Columns),
		"rowset":             nil,
		"rowsetBase64":       nil,
		"total":              res.NumRows,
		"returned":           res.NumRows,
		"queryId":            q.id,
		"databaseProvider":   nil,
		"finalDatabaseName":  nullIfEmpty(q.session.database),
		"finalSchemaName":    nullIfEmpty(q.session.schema),
		"finalWarehouseName": nullIfEmpty(q.session.warehouse),
		"finalRoleName":      q.session.role,
		"numberOfBinds":      0,
		"arrayBindSupported": false,
		"statementTypeId":    4096,
		"version":            1,
		"sendResultTime":     time.Now().UnixMilli(),
		"queryResultFormat":  "arrow",
	}
	delete(data, "rowsetBase64")
	data["rowsetbase64"] = rowset.String()
	if len(chunks) > 0 {
		data["chunks"] = chunks
		data["qrmk"] = base64.StdEncoding.EncodeToString([]byte(q.chunkKey[:32]))
		data["chunkHeaders"] = map[string]string{
			"x-amz-server-side-encryption-customer-algorithm": "AES256",
			"x-amz-server-side-encryption-customer-key":       q.chunkKey,
		}
	}
	writeJSON(w, map[string]any{"data": data, "code": nil, "message": nil, "success": true})
}

func (s *Server) handleChunk(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	s.chunkRequests.Add(1)

	qid, startStr, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/chunks/"), "/")
	start, err := strconv.Atoi(startStr)
	s.mu.Lock()
	q := s.queries[qid]
	expired := q != nil && !q.answered.After(s.urlsExpire)
	s.mu.Unlock()
	if err != nil || q == nil || start < s.cfg.FirstChunkRows || start >= q.res.NumRows {
		http.NotFound(w, r)
		return
	}
	if expired {
		http.Error(w, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", http.StatusForbidden)
		return
	}
	// The chunk URL stands for a presigned cloud-storage URL: it must carry
	// its signature and the headers the query response named.
	if r.URL.Query().Get("sig") != q.chunkKey[:16] ||
		r.Header.Get("x-amz-server-side-encryption-customer-key") != q.chunkKey {
		http.Error(w, "<Error><Code>AccessDenied</Code></Error>", http.StatusForbidden)
		return
	}
	end := min(start+s.cfg.ChunkRows, q.res.NumRows)
	w.Header().Set("Content-Type", "binary/octet-stream")
	var out io.Writer = w
	var zw *gzip.Writer
	if s.cfg.Gzip {
		zw = gzip.NewWriter(w)
		out = zw
	}
	if err := writeArrow(out, q.res, start, end); err != nil {
		panic(http.ErrAbortHandler) // the driver sees a broken download
	}
	if zw != nil {
		_ = zw.Close()
	}
}

func (s *Server) handleAbort(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r); !ok {
		return
	}
	s.aborts.Add(1)
	body, _ := readBody(r)
	var req struct {
		RequestID string `json:"requestId"`
	}
	_ = json.Unmarshal(body, &req)
	s.mu.Lock()
	q := s.byRequest[req.RequestID]
	running := q != nil && time.Now().Before(q.ready) && !q.canceled
	if running {
		q.canceled = true
	}
	s.mu.Unlock()
	if !running {
		writeJSON(w, map[string]any{"data": nil, "code": "000605", "message": "Identified SQL statement is not currently executing.", "success": false})
		return
	}
	writeJSON(w, map[string]any{"data": nil, "code": nil, "message": nil, "success": true})
}

func (s *Server) handleCloseSession(w http.ResponseWriter, r *http.Request) {
	se, ok := s.authorize(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	se.open = false
	s.mu.Unlock()
	s.closed.Add(1)
	writeJSON(w, map[string]any{"data": nil, "code": nil, "message": nil, "success": true})
}

func (s *Server) handleTokenRequest(w http.ResponseWriter, r *http.Request) {
	body, _ := readBody(r)
	var req struct {
		OldSessionToken string `json:"oldSessionToken"`
		RequestType     string `json:"requestType"`
	}
	_ = json.Unmarshal(body, &req)
	h := r.Header.Get("Authorization")
	master := strings.TrimSuffix(strings.TrimPrefix(h, `Snowflake Token="`), `"`)
	s.mu.Lock()
	se := s.masters[master]
	if se == nil || !se.open {
		s.mu.Unlock()
		writeJSON(w, map[string]any{"data": nil, "code": "390114", "message": "Authentication token has expired.  The user must authenticate again.", "success": false})
		return
	}
	if req.OldSessionToken != se.token || req.RequestType != "RENEW" {
		s.mu.Unlock()
		writeJSON(w, map[string]any{"data": nil, "code": "390104", "message": "Invalid renew request.", "success": false})
		return
	}
	delete(s.sessions, se.token)
	se.token = "ver:1-hint:" + randomToken()
	se.expired = false
	s.sessions[se.token] = se
	s.mu.Unlock()
	s.renewals.Add(1)
	writeJSON(w, map[string]any{
		"data":    map[string]any{"sessionToken": se.token, "validityInSecondsST": 3600, "masterToken": se.master, "validityInSecondsMT": 14400, "sessionId": se.id},
		"code":    nil,
		"message": nil,
		"success": true,
	})
}
