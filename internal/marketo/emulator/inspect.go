package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// statsState counts calls for Stats.
type statsState struct {
	callsTotal    int64
	identityCalls int64
	rejected      map[string]int64
	endpoints     map[string]int64
}

func (s *statsState) init() {
	s.rejected = make(map[string]int64)
	s.endpoints = make(map[string]int64)
}

// Stats is a snapshot of the emulator's counters and contents. Its JSON
// form is the body of GET /_emulator/stats.
type Stats struct {
	// CallsTotal counts every REST and bulk request received, whatever
	// its answer (identity calls are counted apart).
	CallsTotal int64 `json:"calls_total"`
	// IdentityCalls counts requests to /identity/oauth/token.
	IdentityCalls int64 `json:"identity_calls"`
	// Rejected counts error answers by code: Marketo codes ("601",
	// "606", "1016", …) and HTTP statuses ("401", "413", "414", "502",
	// "503"). Record-level reasons (1004, 1015, …) are not counted.
	Rejected map[string]int64 `json:"rejected"`
	// MaxConcurrencySeen is the most REST and bulk calls ever in flight at
	// once, counting calls then refused with 615.
	MaxConcurrencySeen int64 `json:"max_concurrency_seen"`
	// InFlight is the number of calls in flight now.
	InFlight int64 `json:"in_flight"`
	// CallsLast20s is the number of calls in the current rate window.
	CallsLast20s int64 `json:"calls_last_20s"`
	// DailyCalls is the number of calls counted against today's quota.
	DailyCalls int64 `json:"daily_calls"`
	// Endpoints counts the routed calls per endpoint, e.g.
	// "DELETE /rest/v1/lists/{id}/leads.json".
	Endpoints map[string]int64 `json:"endpoints"`
	// Leads, Folders and Lists count what the instance holds.
	Leads   int64 `json:"leads"`
	Folders int64 `json:"folders"`
	Lists   int64 `json:"lists"`
	// Imports and Exports count bulk jobs by status.
	Imports map[string]int64 `json:"imports"`
	Exports map[string]int64 `json:"exports"`
}

// Stats returns a snapshot of the counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.advanceLocked(now)
	e.pruneWindowLocked(now)
	e.rollQuotaLocked(now)
	imports := make([]*importJob, 0, len(e.imports.jobs))
	for _, j := range e.imports.jobs {
		imports = append(imports, j)
	}
	return Stats{
		CallsTotal:         e.stats.callsTotal,
		IdentityCalls:      e.stats.identityCalls,
		Rejected:           maps.Clone(e.stats.rejected),
		MaxConcurrencySeen: e.limits.maxSeen,
		InFlight:           e.limits.inFlight,
		CallsLast20s:       int64(len(e.limits.window)),
		DailyCalls:         e.limits.dayCalls,
		Endpoints:          maps.Clone(e.stats.endpoints),
		Leads:              int64(len(e.leads.all)),
		Folders:            int64(len(e.folders)),
		Lists:              int64(len(e.lists)),
		Imports:            jobCounts(imports, func(j *importJob) string { return j.status }),
		Exports:            jobCounts(e.exports.order, func(j *exportJob) string { return j.status }),
	}
}

// ResetStats sets the call counters (CallsTotal, IdentityCalls, Rejected,
// Endpoints, MaxConcurrencySeen) back to zero, so a test can measure one
// phase. The limits' own state (rate window, daily quota) is kept.
func (e *Emulator) ResetStats() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.callsTotal, e.stats.identityCalls = 0, 0
	e.stats.init()
	e.limits.maxSeen = e.limits.inFlight
}

// maxSeedBody is the largest body the seeding API accepts.
const maxSeedBody = 256 << 20

// inspectError is the body of a failed inspection call.
type inspectError struct {
	Error string `json:"error"`
}

// faultsJSON is the wire form of Faults in the inspection API.
type faultsJSON struct {
	Rate              float64     `json:"rate"`
	Seed              int64       `json:"seed"`
	Kinds             []FaultKind `json:"kinds,omitempty"`
	SlowDelay         string      `json:"slowDelay,omitempty"`
	TokenExpiryRate   float64     `json:"tokenExpiryRate"`
	ImportFailureRate float64     `json:"importFailureRate"`
}

func (f faultsJSON) toFaults() (Faults, error) {
	out := Faults{Rate: f.Rate, Seed: f.Seed, TokenExpiryRate: f.TokenExpiryRate, ImportFailureRate: f.ImportFailureRate}
	for name, r := range map[string]float64{"rate": f.Rate, "tokenExpiryRate": f.TokenExpiryRate, "importFailureRate": f.ImportFailureRate} {
		if r < 0 || r > 1 {
			return Faults{}, fmt.Errorf("%s %v is not between 0 and 1", name, r)
		}
	}
	for _, k := range f.Kinds {
		if !slices.Contains(AllFaultKinds(), k) {
			return Faults{}, fmt.Errorf("unknown fault kind %q (want one of 604, 608, 611, 713, 502, 503, slow)", k)
		}
	}
	out.Kinds = f.Kinds
	if f.SlowDelay != "" {
		d, err := time.ParseDuration(f.SlowDelay)
		if err != nil || d < 0 {
			return Faults{}, fmt.Errorf("slowDelay %q is not a duration such as \"2s\"", f.SlowDelay)
		}
		out.SlowDelay = d
	}
	return out, nil
}

func toFaultsJSON(f Faults) faultsJSON {
	out := faultsJSON{Rate: f.Rate, Seed: f.Seed, Kinds: f.Kinds, TokenExpiryRate: f.TokenExpiryRate, ImportFailureRate: f.ImportFailureRate}
	if f.SlowDelay > 0 {
		out.SlowDelay = f.SlowDelay.String()
	}
	return out
}

// seedLeadsRequest is the body of POST /_emulator/leads.
type seedLeadsRequest struct {
	Leads    []map[string]string `json:"leads"`
	Generate int                 `json:"generate"`
	ListID   int64               `json:"listId"`
}

// serveInspect answers the inspection and seeding API under /_emulator/.
// It needs no token and is not counted against the limits.
func (e *Emulator) serveInspect(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(status int, format string, args ...any) {
		reply(status, inspectError{Error: fmt.Sprintf(format, args...)})
	}
	decode := func(v any) bool {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSeedBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
			fail(http.StatusBadRequest, "decoding request body: %v", err)
			return false
		}
		return true
	}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/_emulator/"), "/"), "/")
	route := r.Method + " " + segs[0]
	var listID int64
	if segs[0] == "lists" && len(segs) > 1 {
		n, err := strconv.ParseInt(segs[1], 10, 64)
		if err != nil {
			fail(http.StatusNotFound, "no list %q", segs[1])
			return
		}
		listID = n
		route = r.Method + " lists/{id}"
		if len(segs) > 2 {
			route += "/" + strings.Join(segs[2:], "/")
		}
	} else if len(segs) > 1 {
		route = r.Method + " " + strings.Join(segs, "/")
	}

	switch route {
	case "GET stats":
		reply(http.StatusOK, e.Stats())
	case "POST stats/reset":
		e.ResetStats()
		reply(http.StatusOK, e.Stats())
	case "POST expire-tokens":
		e.ExpireTokens()
		reply(http.StatusOK, map[string]bool{"ok": true})
	case "POST reset-quota":
		e.ResetDailyQuota()
		reply(http.StatusOK, map[string]bool{"ok": true})
	case "GET faults":
		reply(http.StatusOK, toFaultsJSON(e.CurrentFaults()))
	case "POST faults", "PUT faults":
		var fj faultsJSON
		if !decode(&fj) {
			return
		}
		f, err := fj.toFaults()
		if err != nil {
			fail(http.StatusBadRequest, "faults: %v", err)
			return
		}
		e.SetFaults(f)
		reply(http.StatusOK, toFaultsJSON(f))
	case "GET folders":
		out := []map[string]any{}
		for _, f := range e.Folders() {
			out = append(out, map[string]any{"id": f.ID, "name": f.Name, "type": f.Type})
		}
		reply(http.StatusOK, out)
	case "POST folders":
		var req struct {
			Name string `json:"name"`
			Type string `json:"type"`
		}
		if !decode(&req) {
			return
		}
		if strings.TrimSpace(req.Name) == "" {
			fail(http.StatusBadRequest, "folders: name is required")
			return
		}
		var id int64
		switch strings.ToLower(req.Type) {
		case "", "folder":
			id = e.CreateFolder(req.Name)
		case "program":
			id = e.CreateProgram(req.Name)
		default:
			fail(http.StatusBadRequest, "folders: type %q must be Folder or Program", req.Type)
			return
		}
		reply(http.StatusCreated, map[string]int64{"id": id})
	case "GET lists":
		out := []map[string]any{}
		for _, l := range e.StaticLists() {
			out = append(out, map[string]any{"id": l.ID, "name": l.Name, "folderId": l.FolderID, "members": l.Members})
		}
		reply(http.StatusOK, out)
	case "POST lists":
		var req struct {
			Name     string `json:"name"`
			FolderID int64  `json:"folderId"`
		}
		if !decode(&req) {
			return
		}
		if strings.TrimSpace(req.Name) == "" {
			fail(http.StatusBadRequest, "lists: name is required")
			return
		}
		e.mu.Lock()
		ref := folderRef{ID: req.FolderID, Type: "Folder"}
		if f, ok := e.folders[req.FolderID]; ok {
			ref.Type = f.typ
		}
		l, err := e.createListLocked(strings.TrimSpace(req.Name), "", ref, e.now())
		e.mu.Unlock()
		switch {
		case err != nil:
			fail(http.StatusConflict, "lists: %v", err)
		default:
			reply(http.StatusCreated, map[string]int64{"id": l.id})
		}
	case "DELETE lists/{id}":
		if !e.DeleteStaticList(listID) {
			fail(http.StatusNotFound, "lists: list %d not found", listID)
			return
		}
		reply(http.StatusOK, map[string]bool{"ok": true})
	case "GET lists/{id}/members":
		members := e.ListMembers(listID)
		if members == nil && !e.listExists(listID) {
			fail(http.StatusNotFound, "lists: list %d not found", listID)
			return
		}
		out := make([]map[string]any, len(members))
		for i, m := range members {
			out[i] = map[string]any{"id": m.ID, "email": m.Email, "fields": m.Fields}
		}
		reply(http.StatusOK, out)
	case "POST lists/{id}/members":
		var req struct {
			IDs []int64 `json:"ids"`
		}
		if !decode(&req) {
			return
		}
		e.mu.Lock()
		e.advanceLocked(e.now())
		err := e.addMembersLocked(listID, req.IDs)
		e.mu.Unlock()
		if err != nil {
			fail(http.StatusNotFound, "lists: %v", err)
			return
		}
		reply(http.StatusOK, map[string]int{"added": len(req.IDs)})
	case "POST leads":
		var req seedLeadsRequest
		if !decode(&req) {
			return
		}
		reply(e.seedLeads(req))
	default:
		fail(http.StatusNotFound, "no inspection endpoint %s %s (see the package documentation)", r.Method, r.URL.Path)
	}
}

// seedLeads serves POST /_emulator/leads: it returns the status and body.
func (e *Emulator) seedLeads(req seedLeadsRequest) (int, any) {
	if req.Generate < 0 || req.Generate > 10_000_000 {
		return http.StatusBadRequest, inspectError{fmt.Sprintf("leads: generate %d must be between 0 and 10000000", req.Generate)}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.advanceLocked(now)
	if _, ok := e.lists[req.ListID]; req.ListID != 0 && !ok {
		return http.StatusNotFound, inspectError{fmt.Sprintf("leads: list %d not found", req.ListID)}
	}
	ids := make([]int64, 0, len(req.Leads))
	for i, rec := range req.Leads {
		id, err := e.upsertLocked(rec, now)
		if err != nil {
			return http.StatusBadRequest, inspectError{fmt.Sprintf("leads: record %d: %v", i, err)}
		}
		ids = append(ids, id)
	}
	gen := e.generateLocked(req.Generate, now)
	if req.ListID != 0 {
		_ = e.addMembersLocked(req.ListID, ids)
		_ = e.addMembersLocked(req.ListID, gen)
	}
	out := map[string]any{"ids": ids, "generated": len(gen)}
	if len(gen) > 0 {
		out["firstGeneratedId"] = gen[0]
		out["lastGeneratedId"] = gen[len(gen)-1]
	}
	return http.StatusOK, out
}

func (e *Emulator) listExists(id int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.lists[id]
	return ok
}
