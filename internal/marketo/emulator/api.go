package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// call is one REST or bulk API request on its way through the emulator.
type call struct {
	e      *Emulator
	r      *http.Request
	method string    // the effective method (after _method)
	reqID  string    // Marketo-style request id
	now    time.Time // the clock when the call arrived
	params url.Values
	body   []byte // raw non-form body (JSON)
	mtype  string // media type of the body
	file   *upload
	wild   []string // path wildcards, in order
	asset  bool     // answer with the Asset API envelope
}

// upload is the file part of a multipart bulk import.
type upload struct {
	name string
	data []byte
}

// response is what a handler answers; it is written after the state lock is
// released.
type response struct {
	status      int
	contentType string
	header      http.Header
	body        []byte
	// content, when set, is served with http.ServeContent (Range support).
	content *bytes.Reader
	modTime time.Time
	// code is the error code counted in Stats.Rejected ("" on success).
	code string
}

// route is one endpoint of the API.
type route struct {
	method string
	// segs is the path without its ".json" suffix, split at "/"; "{id}"
	// matches a positive integer and "{s}" any non-empty segment.
	segs []string
	name string // e.g. "GET /rest/v1/lists/{id}/leads.json"
	// asset selects the Asset API envelope for errors.
	asset bool
	// upload marks the bulk import endpoint (multipart, 10 MB body).
	upload bool
	h      func(c *call) response
}

func newRoute(method, path string, asset bool, h func(*call) response) route {
	return route{
		method: method,
		segs:   strings.Split(strings.TrimSuffix(strings.TrimPrefix(path, "/"), ".json"), "/"),
		name:   method + " " + path,
		asset:  asset,
		h:      h,
	}
}

// routes lists every endpoint the emulator serves.
func (e *Emulator) routes() []route {
	rs := []route{
		// Lead Database: static lists and membership.
		newRoute(http.MethodGet, "/rest/v1/lists/{id}.json", false, e.hGetList),
		newRoute(http.MethodGet, "/rest/v1/lists.json", false, e.hGetLists),
		newRoute(http.MethodPost, "/rest/v1/lists/{id}/leads.json", false, e.hAddMembers),
		newRoute(http.MethodDelete, "/rest/v1/lists/{id}/leads.json", false, e.hRemoveMembers),
		newRoute(http.MethodGet, "/rest/v1/lists/{id}/leads.json", false, e.hGetMembers),
		newRoute(http.MethodGet, "/rest/v1/list/{id}/leads.json", false, e.hGetMembers),
		newRoute(http.MethodGet, "/rest/v1/lists/{id}/leads/ismember.json", false, e.hIsMember),
		// Lead Database: leads.
		newRoute(http.MethodGet, "/rest/v1/leads.json", false, e.hGetLeads),
		newRoute(http.MethodPost, "/rest/v1/leads.json", false, e.hSyncLeads),
		newRoute(http.MethodGet, "/rest/v1/lead/{id}.json", false, e.hGetLead),
		newRoute(http.MethodGet, "/rest/v1/leads/describe.json", false, e.hDescribeLeads),
		// Asset: static lists and folders.
		newRoute(http.MethodGet, "/rest/asset/v1/staticList/byName.json", true, e.hStaticListByName),
		newRoute(http.MethodGet, "/rest/asset/v1/staticList/{id}.json", true, e.hGetStaticList),
		newRoute(http.MethodPost, "/rest/asset/v1/staticList/{id}.json", true, e.hUpdateStaticList),
		newRoute(http.MethodPost, "/rest/asset/v1/staticList/{id}/delete.json", true, e.hDeleteStaticList),
		newRoute(http.MethodGet, "/rest/asset/v1/staticLists.json", true, e.hBrowseStaticLists),
		newRoute(http.MethodPost, "/rest/asset/v1/staticLists.json", true, e.hCreateStaticList),
		newRoute(http.MethodGet, "/rest/asset/v1/folder/byName.json", true, e.hFolderByName),
		newRoute(http.MethodGet, "/rest/asset/v1/folder/{id}.json", true, e.hGetFolder),
		newRoute(http.MethodGet, "/rest/asset/v1/folders.json", true, e.hBrowseFolders),
		newRoute(http.MethodPost, "/rest/asset/v1/folders.json", true, e.hCreateFolder),
		// Bulk import.
		newRoute(http.MethodGet, "/bulk/v1/leads/batch/{id}.json", false, e.hImportStatus),
		newRoute(http.MethodGet, "/bulk/v1/leads/batch/{id}/failures.json", false, e.hImportFailures),
		newRoute(http.MethodGet, "/bulk/v1/leads/batch/{id}/warnings.json", false, e.hImportWarnings),
		// Bulk extract.
		newRoute(http.MethodPost, "/bulk/v1/leads/export/create.json", false, e.hExportCreate),
		newRoute(http.MethodPost, "/bulk/v1/leads/export/{s}/enqueue.json", false, e.hExportEnqueue),
		newRoute(http.MethodGet, "/bulk/v1/leads/export/{s}/status.json", false, e.hExportStatus),
		newRoute(http.MethodGet, "/bulk/v1/leads/export/{s}/file.json", false, e.hExportFile),
		newRoute(http.MethodPost, "/bulk/v1/leads/export/{s}/cancel.json", false, e.hExportCancel),
		newRoute(http.MethodGet, "/bulk/v1/leads/export.json", false, e.hExportList),
	}
	imp := newRoute(http.MethodPost, "/bulk/v1/leads.json", false, e.hImportCreate)
	imp.upload = true
	return append(rs, imp)
}

// match finds the route for method and path. It reports whether the path
// exists at all (for 605 versus 610).
func matchRoute(rs []route, method, path string) (rt *route, wild []string, pathKnown bool) {
	if !strings.HasSuffix(path, ".json") {
		return nil, nil, false
	}
	segs := strings.Split(strings.TrimSuffix(strings.TrimPrefix(path, "/"), ".json"), "/")
	for i := range rs {
		w, ok := matchSegs(rs[i].segs, segs)
		if !ok {
			continue
		}
		pathKnown = true
		if rs[i].method == method {
			return &rs[i], w, true
		}
	}
	return nil, nil, pathKnown
}

func matchSegs(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var wild []string
	for i, p := range pattern {
		s := segs[i]
		switch p {
		case "{id}":
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return nil, false
			}
			wild = append(wild, s)
		case "{s}":
			if s == "" {
				return nil, false
			}
			wild = append(wild, s)
		default:
			if p != s {
				return nil, false
			}
		}
	}
	return wild, true
}

// serveAPI runs one REST or bulk call through Marketo's gateway checks,
// authentication, limits and faults, then its handler.
func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	now := e.now()
	e.stats.callsTotal++
	reqID := e.nextRequestIDLocked(now)
	e.mu.Unlock()

	c := &call{e: e, r: r, reqID: reqID, now: now, method: r.Method}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	if len(uri) > MaxURIBytes {
		e.writeHTTPError(w, c, http.StatusRequestURITooLong, "Request-URI Too Large")
		return
	}
	isImport := r.Method == http.MethodPost && r.URL.Path == "/bulk/v1/leads.json"
	if status, msg := c.readBody(w, isImport); status != 0 {
		e.writeHTTPError(w, c, status, msg)
		return
	}
	if r.Method == http.MethodPost {
		if m := c.params.Get("_method"); m != "" {
			c.method = strings.ToUpper(m)
		}
	}

	e.mu.Lock()
	fault := e.drawFaultLocked()
	e.mu.Unlock()
	switch fault {
	case FaultBadGateway:
		e.writeHTTPError(w, c, http.StatusBadGateway, "Bad Gateway")
		return
	case FaultServiceUnavailable:
		e.writeHTTPError(w, c, http.StatusServiceUnavailable, "Service Temporarily Unavailable")
		return
	}

	rt, wild, known := matchRoute(e.routeList, c.method, r.URL.Path)
	if rt != nil {
		c.asset = rt.asset
		c.wild = wild
	} else {
		c.asset = strings.HasPrefix(r.URL.Path, "/rest/asset/")
	}

	e.mu.Lock()
	if code, msg := e.checkTokenLocked(c.token(), now); code != "" {
		resp := c.fail(code, msg)
		e.mu.Unlock()
		e.write(w, c, resp)
		return
	}
	if rt == nil {
		var resp response
		if known {
			resp = c.fail("605", fmt.Sprintf("Request method '%s' not supported", c.method))
		} else {
			resp = c.fail("610", "Requested resource not found")
		}
		if known {
			e.mu.Unlock()
			e.write(w, c, resp)
			return
		}
		// 610 is counted against the limits like any other call.
		if code, msg := e.admitLocked(now); code != "" {
			resp = c.fail(code, msg)
		} else {
			e.chargeLocked(now)
			e.releaseLocked()
		}
		e.mu.Unlock()
		e.write(w, c, resp)
		return
	}
	e.stats.endpoints[rt.name]++
	if code, msg := e.admitLocked(now); code != "" {
		resp := c.fail(code, msg)
		e.mu.Unlock()
		e.write(w, c, resp)
		return
	}
	switch fault {
	case FaultTimeout, FaultUnavailable, FaultSystemError:
		// Not counted against the limits, as Marketo documents.
		resp := c.fail(string(fault), faultMessage(fault))
		e.releaseLocked()
		e.mu.Unlock()
		e.write(w, c, resp)
		return
	}
	e.chargeLocked(now)
	if fault == FaultTransient {
		resp := c.fail(string(fault), faultMessage(fault))
		e.releaseLocked()
		e.mu.Unlock()
		e.write(w, c, resp)
		return
	}
	slow := e.faults.slowDelay()
	e.mu.Unlock()

	if fault == FaultSlow {
		e.sleep(r.Context(), slow)
	}
	e.sleep(r.Context(), e.cfg.Latency)

	e.mu.Lock()
	c.now = e.now() // after any latency: the time the call takes effect
	e.advanceLocked(c.now)
	resp := rt.h(c)
	e.releaseLocked()
	e.mu.Unlock()
	e.write(w, c, resp)
}

// readBody reads the request body into c.params, c.body or c.file. It
// returns an HTTP status and message when the request must be refused.
func (c *call) readBody(w http.ResponseWriter, isImport bool) (int, string) {
	r := c.r
	c.params = url.Values{}
	for k, v := range r.URL.Query() {
		c.params[k] = append(c.params[k], v...)
	}
	limit := int64(MaxBodyBytes)
	if isImport {
		limit = MaxImportFileBytes + 64<<10 // the file plus the multipart framing and fields
	}
	if r.ContentLength > limit {
		return http.StatusRequestEntityTooLarge, "Request Entity Too Large"
	}
	if r.Body == nil || r.Body == http.NoBody {
		return 0, ""
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	mt, mparams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	c.mtype = mt
	if mt == "multipart/form-data" {
		return c.readMultipart(body, mparams["boundary"])
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return readError(err)
	}
	if mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(data))
		if err != nil {
			return http.StatusBadRequest, "malformed form body: " + err.Error()
		}
		for k, v := range form {
			c.params[k] = append(c.params[k], v...)
		}
		return 0, ""
	}
	c.body = data
	return 0, ""
}

// readMultipart reads a multipart body: the part named "file" into c.file
// (at most MaxImportFileBytes), every other part into c.params.
func (c *call) readMultipart(body io.Reader, boundary string) (int, string) {
	if boundary == "" {
		c.mtype = "multipart/invalid"
		return 0, ""
	}
	mr := multipart.NewReader(body, boundary)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return 0, ""
		}
		if err != nil {
			if status, msg := readError(err); status == http.StatusRequestEntityTooLarge {
				return status, msg
			}
			c.mtype = "multipart/invalid"
			return 0, ""
		}
		name := part.FormName()
		if name == "file" {
			data, err := io.ReadAll(io.LimitReader(part, MaxImportFileBytes+1))
			if err != nil {
				return readError(err)
			}
			if len(data) > MaxImportFileBytes {
				return http.StatusRequestEntityTooLarge, "Request Entity Too Large"
			}
			c.file = &upload{name: part.FileName(), data: data}
			continue
		}
		data, err := io.ReadAll(io.LimitReader(part, MaxBodyBytes))
		if err != nil {
			return readError(err)
		}
		if name != "" {
			c.params[name] = append(c.params[name], string(data))
		}
	}
}

func readError(err error) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, "Request Entity Too Large"
	}
	return http.StatusBadRequest, "reading request body: " + err.Error()
}

// token returns the access token of the call: the Authorization header, else
// the deprecated access_token parameter (query, form or multipart field).
func (c *call) token() string {
	if h := c.r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return c.params.Get("access_token")
}

// param returns the first value of the named parameter (query, then form),
// trimmed.
func (c *call) param(name string) string {
	return strings.TrimSpace(c.params.Get(name))
}

// pathID returns the i-th path wildcard as an integer (routes only match
// positive integers for "{id}").
func (c *call) pathID(i int) int64 {
	n, _ := strconv.ParseInt(c.wild[i], 10, 64)
	return n
}

// apiError is one entry of a response's errors array.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// leadEnvelope is the response of Lead Database and bulk calls.
type leadEnvelope struct {
	RequestID     string     `json:"requestId"`
	Success       bool       `json:"success"`
	Errors        []apiError `json:"errors,omitempty"`
	Result        any        `json:"result,omitempty"`
	MoreResult    *bool      `json:"moreResult,omitempty"`
	NextPageToken string     `json:"nextPageToken,omitempty"`
}

// assetEnvelope is the response of Asset API calls: warnings are strings,
// and errors and warnings are always present.
type assetEnvelope struct {
	Success   bool       `json:"success"`
	Warnings  []string   `json:"warnings"`
	Errors    []apiError `json:"errors"`
	RequestID string     `json:"requestId"`
	Result    any        `json:"result,omitempty"`
}

// noAssetsWarning is the asset API's not-found answer.
const noAssetsWarning = "No assets found for the given search criteria."

func jsonResponse(v any, code string) response {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value marshalled here is built from strings, numbers and
		// maps of them; failing is a bug in the emulator.
		panic(fmt.Sprintf("emulator: marshalling response: %v", err))
	}
	return response{status: http.StatusOK, contentType: "application/json;charset=UTF-8", body: b, code: code}
}

// ok answers success with result (a slice; an empty one is kept).
func (c *call) ok(result any) response {
	if c.asset {
		return jsonResponse(assetEnvelope{Success: true, Warnings: []string{}, Errors: []apiError{}, RequestID: c.reqID, Result: result}, "")
	}
	return jsonResponse(leadEnvelope{RequestID: c.reqID, Success: true, Result: result}, "")
}

// okPaged answers a page of a paged Lead Database call: when more results
// follow, moreResult is true and nextPageToken resumes after this page.
func (c *call) okPaged(result any, next string) response {
	env := leadEnvelope{RequestID: c.reqID, Success: true, Result: result, NextPageToken: next}
	if next != "" {
		more := true
		env.MoreResult = &more
	}
	return jsonResponse(env, "")
}

// fail answers success:false with one error.
func (c *call) fail(code, msg string) response {
	errs := []apiError{{Code: code, Message: msg}}
	if c.asset {
		return jsonResponse(assetEnvelope{Success: false, Warnings: []string{}, Errors: errs, RequestID: c.reqID}, code)
	}
	return jsonResponse(leadEnvelope{RequestID: c.reqID, Success: false, Errors: errs}, code)
}

// notFound answers an Asset API search that found nothing: success, the
// "No assets found" warning, and no result.
func (c *call) notFound() response {
	return jsonResponse(assetEnvelope{Success: true, Warnings: []string{noAssetsWarning}, Errors: []apiError{}, RequestID: c.reqID}, "")
}

// write sends resp and counts its error code.
func (e *Emulator) write(w http.ResponseWriter, c *call, resp response) {
	if resp.code != "" {
		e.mu.Lock()
		e.stats.rejected[resp.code]++
		e.mu.Unlock()
	}
	e.log.Debug("marketo call",
		zap.String("method", c.method), zap.String("path", c.r.URL.Path),
		zap.String("request_id", c.reqID), zap.String("code", resp.code))
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	if resp.content != nil {
		w.Header().Set("Content-Type", resp.contentType)
		http.ServeContent(w, c.r, "", resp.modTime, resp.content)
		return
	}
	if resp.contentType != "" {
		w.Header().Set("Content-Type", resp.contentType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.body)))
	status := resp.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp.body)
}

// writeHTTPError sends an HTTP-level error (413, 414, 502, 503) the way a
// gateway does: a small HTML page, no JSON envelope.
func (e *Emulator) writeHTTPError(w http.ResponseWriter, c *call, status int, msg string) {
	body := fmt.Sprintf("<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center></body></html>\n",
		status, msg, status, msg)
	e.write(w, c, response{status: status, contentType: "text/html", body: []byte(body), code: strconv.Itoa(status)})
}
