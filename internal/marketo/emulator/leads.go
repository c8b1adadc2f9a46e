package emulator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Lead is a lead as the Go API reports it.
type Lead struct {
	ID    int64
	Email string
	// Fields holds every field set on the lead by its REST name, email
	// included; id, createdAt and updatedAt are not fields here.
	Fields map[string]string
}

// lead is a stored lead. Its ID is its position in leadStore.all plus
// firstLeadID. Fields are a short slice rather than a map: a lead has few
// fields, and a million leads stay small.
type lead struct {
	email   string
	fields  []fieldValue // without email, in the order first set
	created int64        // unix seconds
	updated int64
}

// fieldValue is one field set on a lead (name is the schema's REST name).
type fieldValue struct {
	name, value string
}

// leadStore holds the leads, indexed by ID (a slice) and by lower-cased
// email.
type leadStore struct {
	all     []lead
	byEmail map[string]int64   // email -> id, when exactly one lead has it
	dups    map[string][]int64 // email -> ids, when several leads have it
}

func newLeadStore() leadStore {
	return leadStore{byEmail: make(map[string]int64), dups: make(map[string][]int64)}
}

// get returns the lead with id, or nil. The pointer is valid until the next
// lead is created.
func (s *leadStore) get(id int64) *lead {
	i := id - firstLeadID
	if i < 0 || i >= int64(len(s.all)) {
		return nil
	}
	return &s.all[i]
}

// withEmail returns the IDs of the leads with email, ignoring case, in ID
// order. The slice must not be modified.
func (s *leadStore) withEmail(email string) []int64 {
	k := strings.ToLower(email)
	if ids, ok := s.dups[k]; ok {
		return ids
	}
	if id, ok := s.byEmail[k]; ok {
		return []int64{id}
	}
	return nil
}

func (s *leadStore) index(id int64, email string) {
	if email == "" {
		return
	}
	k := strings.ToLower(email)
	if ids, ok := s.dups[k]; ok {
		i, _ := slices.BinarySearch(ids, id)
		s.dups[k] = slices.Insert(ids, i, id)
		return
	}
	if other, ok := s.byEmail[k]; ok {
		delete(s.byEmail, k)
		ids := []int64{other, id}
		slices.Sort(ids)
		s.dups[k] = ids
		return
	}
	s.byEmail[k] = id
}

func (s *leadStore) unindex(id int64, email string) {
	if email == "" {
		return
	}
	k := strings.ToLower(email)
	if ids, ok := s.dups[k]; ok {
		ids = slices.DeleteFunc(slices.Clone(ids), func(x int64) bool { return x == id })
		if len(ids) == 1 {
			delete(s.dups, k)
			s.byEmail[k] = ids[0]
		} else {
			s.dups[k] = ids
		}
		return
	}
	if s.byEmail[k] == id {
		delete(s.byEmail, k)
	}
}

// create adds a lead and returns its ID.
func (s *leadStore) create(now time.Time) int64 {
	id := firstLeadID + int64(len(s.all))
	t := now.Unix()
	s.all = append(s.all, lead{created: t, updated: t})
	return id
}

// set writes a field of a lead (an empty value clears it) and keeps the
// email index in step.
func (s *leadStore) set(id int64, field, value string) {
	l := s.get(id)
	if field == "email" {
		if l.email != value {
			s.unindex(id, l.email)
			l.email = value
			s.index(id, value)
		}
		return
	}
	for i := range l.fields {
		if l.fields[i].name == field {
			if value == "" {
				l.fields = slices.Delete(l.fields, i, i+1)
			} else {
				l.fields[i].value = value
			}
			return
		}
	}
	if value != "" {
		l.fields = append(l.fields, fieldValue{field, value})
	}
}

// value returns a field of a lead as stored ("" when unset).
func (l *lead) value(field string) string {
	if field == "email" {
		return l.email
	}
	for _, f := range l.fields {
		if f.name == field {
			return f.value
		}
	}
	return ""
}

// mostRecent returns the most recently updated of ids (the highest ID among
// equals).
func (s *leadStore) mostRecent(ids []int64) int64 {
	best := ids[0]
	for _, id := range ids[1:] {
		if a, b := s.get(id), s.get(best); a.updated > b.updated || a.updated == b.updated && id > best {
			best = id
		}
	}
	return best
}

// findLocked returns the IDs of the leads whose field equals one of values
// (ignoring case for strings), sorted and unique. Email and id use indexes;
// other fields scan every lead.
func (e *Emulator) findLocked(f fieldDef, values []string) []int64 {
	var ids []int64
	switch f.name {
	case "id":
		for _, v := range values {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && e.leads.get(n) != nil {
				ids = append(ids, n)
			}
		}
	case "email":
		for _, v := range values {
			ids = append(ids, e.leads.withEmail(v)...)
		}
	default:
		want := make(map[string]struct{}, len(values))
		for _, v := range values {
			want[strings.ToLower(v)] = struct{}{}
		}
		for i := range e.leads.all {
			v := e.leads.all[i].value(f.name)
			if v == "" {
				continue
			}
			if _, ok := want[strings.ToLower(v)]; ok {
				ids = append(ids, firstLeadID+int64(i))
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// leadLocked returns the Go API view of a stored lead.
func (e *Emulator) leadLocked(id int64) Lead {
	l := e.leads.get(id)
	fields := make(map[string]string, len(l.fields)+1)
	for _, f := range l.fields {
		fields[f.name] = f.value
	}
	if l.email != "" {
		fields["email"] = l.email
	}
	return Lead{ID: id, Email: l.email, Fields: fields}
}

// UpsertLeads creates or updates leads and returns their IDs in input
// order. A record with an "id" updates that lead (it must exist); else a
// record with an "email" updates the most recently updated lead with that
// email (ignoring case) or creates one; else it creates a lead. Field names
// are matched ignoring case, and unknown ones are declared as custom fields.
// An empty value clears a field. Values are not validated, so tests can seed
// data a real client would be refused.
func (e *Emulator) UpsertLeads(records []map[string]string) []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.advanceLocked(now)
	ids := make([]int64, len(records))
	for i, rec := range records {
		id, err := e.upsertLocked(rec, now)
		if err != nil {
			panic("emulator: UpsertLeads: " + err.Error())
		}
		ids[i] = id
	}
	return ids
}

func (e *Emulator) upsertLocked(rec map[string]string, now time.Time) (int64, error) {
	var id int64
	fields := make(map[string]string, len(rec))
	for k, v := range rec {
		f := e.schema.addCustom(k)
		switch f.name {
		case "id":
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || e.leads.get(n) == nil {
				return 0, fmt.Errorf("record %v: lead id %q not found", rec, v)
			}
			id = n
		case "createdAt", "updatedAt":
		default:
			fields[f.name] = v
		}
	}
	if id == 0 {
		if ids := e.leads.withEmail(fields["email"]); fields["email"] != "" && len(ids) > 0 {
			id = e.leads.mostRecent(ids)
		} else {
			id = e.leads.create(now)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		e.leads.set(id, k, fields[k])
	}
	e.leads.get(id).updated = now.Unix()
	return id, nil
}

// GenerateLeads creates n leads with distinct generated emails
// ("lead<ID>@example.com"), first and last names, and returns their IDs.
func (e *Emulator) GenerateLeads(n int) []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.advanceLocked(now)
	return e.generateLocked(n, now)
}

func (e *Emulator) generateLocked(n int, now time.Time) []int64 {
	ids := make([]int64, 0, max(n, 0))
	e.leads.all = slices.Grow(e.leads.all, max(n, 0))
	for range n {
		id := e.leads.create(now)
		s := strconv.FormatInt(id, 10)
		e.leads.set(id, "email", "lead"+s+"@example.com")
		l := e.leads.get(id)
		l.fields = []fieldValue{{"firstName", "Lead"}, {"lastName", s}}
		ids = append(ids, id)
	}
	return ids
}

// Leads returns the leads with the given IDs, skipping unknown ones.
func (e *Emulator) Leads(ids ...int64) []Lead {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Lead, 0, len(ids))
	for _, id := range ids {
		if e.leads.get(id) != nil {
			out = append(out, e.leadLocked(id))
		}
	}
	return out
}

// LeadsByEmail returns the leads with email (ignoring case), sorted by ID.
func (e *Emulator) LeadsByEmail(email string) []Lead {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Lead
	for _, id := range e.leads.withEmail(email) {
		out = append(out, e.leadLocked(id))
	}
	return out
}

// leadJSON renders a lead for a Lead Database response with the given
// fields; id is always present, unset fields are null.
func (e *Emulator) leadJSON(id int64, fields []fieldDef) map[string]any {
	l := e.leads.get(id)
	m := make(map[string]any, len(fields)+1)
	m["id"] = id
	for _, f := range fields {
		switch f.name {
		case "id":
		case "createdAt":
			m[f.name] = time.Unix(l.created, 0).UTC().Format(time.RFC3339)
		case "updatedAt":
			m[f.name] = time.Unix(l.updated, 0).UTC().Format(time.RFC3339)
		default:
			m[f.name] = typedValue(f, l.value(f.name))
		}
	}
	return m
}

// typedValue renders a stored value as Marketo types it in JSON.
func typedValue(f fieldDef, v string) any {
	if v == "" {
		return nil
	}
	switch f.typ {
	case "integer":
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	case "float", "currency":
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			return x
		}
	case "boolean":
		if b, ok := parseBool(v); ok {
			return b
		}
	}
	return v
}

// fieldsParam parses the fields parameter (comma-separated or repeated);
// without it the default fields are returned.
func (c *call) fieldsParam() ([]fieldDef, *response) {
	names := splitList(c.params["fields"])
	if len(names) == 0 {
		names = defaultLeadFields()
	}
	out := make([]fieldDef, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		f, ok := c.e.schema.lookup(n)
		if !ok {
			r := c.fail("1006", fmt.Sprintf("Field '%s' not found", n))
			return nil, &r
		}
		if !seen[f.name] {
			seen[f.name] = true
			out = append(out, f)
		}
	}
	return out, nil
}

// hGetLeads answers GET /rest/v1/leads.json (Get Leads by Filter Type).
func (e *Emulator) hGetLeads(c *call) response {
	ft := c.param("filterType")
	if ft == "" {
		return c.fail("701", "filterType cannot be blank")
	}
	f, ok := e.schema.lookup(ft)
	if !ok {
		return c.fail("1006", fmt.Sprintf("Field '%s' not found", ft))
	}
	if !f.searchable {
		return c.fail("1011", fmt.Sprintf("Field '%s' not supported", ft))
	}
	values := splitList(c.params["filterValues"])
	if len(values) == 0 {
		return c.fail("701", "filterValues cannot be blank")
	}
	if len(values) > MaxBatch {
		return c.fail("1003", fmt.Sprintf("Invalid data: %d filterValues given, at most %d allowed", len(values), MaxBatch))
	}
	fields, bad := c.fieldsParam()
	if bad != nil {
		return *bad
	}
	size, after, bad := c.paging("leads")
	if bad != nil {
		return *bad
	}
	ids := e.findLocked(f, values)
	if len(ids) > MaxFilterMatches {
		return c.fail("1003", "Too many results match the filter")
	}
	start, _ := slices.BinarySearch(ids, after+1)
	ids = ids[start:]
	next := ""
	if len(ids) > size {
		ids = ids[:size]
		next = encodePageToken("leads", ids[size-1])
	}
	result := make([]map[string]any, len(ids))
	for i, id := range ids {
		result[i] = e.leadJSON(id, fields)
	}
	return c.okPaged(result, next)
}

// hGetLead answers GET /rest/v1/lead/{id}.json.
func (e *Emulator) hGetLead(c *call) response {
	fields, bad := c.fieldsParam()
	if bad != nil {
		return *bad
	}
	id := c.pathID(0)
	result := []map[string]any{}
	if e.leads.get(id) != nil {
		result = append(result, e.leadJSON(id, fields))
	}
	return c.ok(result)
}

// recordResult is one entry of a Sync Leads result.
type recordResult struct {
	ID      int64      `json:"id,omitempty"`
	Status  string     `json:"status"`
	Reasons []apiError `json:"reasons,omitempty"`
}

func skipped(code, msg string) recordResult {
	return recordResult{Status: "skipped", Reasons: []apiError{{Code: code, Message: msg}}}
}

// syncRequest is the body of POST /rest/v1/leads.json.
type syncRequest struct {
	Action          string                       `json:"action"`
	LookupField     string                       `json:"lookupField"`
	PartitionName   string                       `json:"partitionName"`
	AsyncProcessing bool                         `json:"asyncProcessing"`
	Input           []map[string]json.RawMessage `json:"input"`
}

// hSyncLeads answers POST /rest/v1/leads.json (Sync Leads).
func (e *Emulator) hSyncLeads(c *call) response {
	if c.mtype == "application/x-www-form-urlencoded" || strings.HasPrefix(c.mtype, "multipart/") {
		return c.fail("612", "Invalid Content Type")
	}
	var req syncRequest
	dec := json.NewDecoder(bytes.NewReader(c.body))
	if err := dec.Decode(&req); err != nil {
		return c.fail("609", "Invalid JSON")
	}
	action := cmp.Or(req.Action, "createOrUpdate")
	switch action {
	case "createOrUpdate", "createOnly", "updateOnly", "createDuplicate":
	default:
		return c.fail("1003", fmt.Sprintf("Invalid action '%s'", req.Action))
	}
	lf, ok := e.schema.lookup(cmp.Or(req.LookupField, "email"))
	if !ok {
		return c.fail("1006", fmt.Sprintf("Field '%s' not found", req.LookupField))
	}
	if !lf.searchable || lf.name == "cookies" {
		return c.fail("1011", fmt.Sprintf("Field '%s' not supported", req.LookupField))
	}
	if lf.name == "id" && action != "updateOnly" {
		return c.fail("1003", "Invalid data: lookupField 'id' is only allowed with action 'updateOnly'")
	}
	if len(req.Input) == 0 {
		return c.fail("701", "input cannot be blank")
	}
	if len(req.Input) > MaxBatch {
		return c.fail("1003", fmt.Sprintf("Invalid data: %d records given, at most %d allowed", len(req.Input), MaxBatch))
	}
	results := make([]recordResult, len(req.Input))
	for i, rec := range req.Input {
		results[i] = e.syncOneLocked(rec, action, lf, c.now)
	}
	return c.ok(results)
}

// syncOneLocked applies one Sync Leads record.
func (e *Emulator) syncOneLocked(rec map[string]json.RawMessage, action string, lf fieldDef, now time.Time) recordResult {
	vals := make(map[string]string, len(rec))
	for _, k := range slices.Sorted(maps.Keys(rec)) {
		f, ok := e.schema.lookup(k)
		if !ok {
			return skipped("1006", fmt.Sprintf("Field '%s' not found", k))
		}
		if f.readOnly && !(f.name == "id" && lf.name == "id") {
			return skipped("1003", fmt.Sprintf("Invalid data: field '%s' is read only", f.name))
		}
		v, ok := rawString(rec[k])
		if !ok {
			return skipped("1001", fmt.Sprintf("Invalid value '%s'. Required of type '%s'", rec[k], f.typ))
		}
		if v != "" {
			if t := checkValue(f, v); t != "" {
				return skipped("1001", fmt.Sprintf("Invalid value '%s'. Required of type '%s'", v, t))
			}
		}
		vals[f.name] = v
	}
	key := vals[lf.name]
	if key == "" {
		return skipped("1002", fmt.Sprintf("Missing value for required parameter '%s'", lf.name))
	}
	var matches []int64
	if action != "createDuplicate" {
		matches = e.findLocked(lf, []string{key})
	}
	var id int64
	status := "updated"
	switch {
	case action == "createDuplicate", len(matches) == 0 && action != "updateOnly":
		if action == "createOnly" || action == "createOrUpdate" || action == "createDuplicate" {
			id = e.leads.create(now)
			status = "created"
		}
	case len(matches) == 0:
		return skipped("1004", "Lead not found")
	case action == "createOnly":
		return skipped("1005", "Lead already exists")
	case len(matches) > 1:
		return skipped("1007", "Multiple leads match the lookup criteria")
	default:
		id = matches[0]
	}
	delete(vals, "id")
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		e.leads.set(id, k, vals[k])
	}
	e.leads.get(id).updated = now.Unix()
	return recordResult{ID: id, Status: status}
}

// rawString converts a JSON value of a Sync Leads record to the stored
// string: strings as is, numbers and booleans as written, null as "".
// Objects and arrays are refused.
func rawString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case '{', '[':
		return "", false
	}
	if string(raw) == "null" {
		return "", true
	}
	return string(raw), true
}

// describeField is one entry of the Describe Lead result.
type describeField struct {
	ID          int               `json:"id"`
	DisplayName string            `json:"displayName"`
	DataType    string            `json:"dataType"`
	Length      int               `json:"length,omitempty"`
	Rest        describeFieldName `json:"rest"`
}

type describeFieldName struct {
	Name     string `json:"name"`
	ReadOnly bool   `json:"readOnly"`
}

// hDescribeLeads answers GET /rest/v1/leads/describe.json.
func (e *Emulator) hDescribeLeads(c *call) response {
	out := make([]describeField, len(e.schema.defs))
	for i, f := range e.schema.defs {
		d := describeField{ID: i + 1, DisplayName: f.name, DataType: f.typ, Rest: describeFieldName{Name: f.name, ReadOnly: f.readOnly}}
		if f.typ == "string" || f.typ == "email" {
			d.Length = 255
		}
		out[i] = d
	}
	return c.ok(out)
}
