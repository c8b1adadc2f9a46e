package emulator

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bulk import limits, as documented.
const (
	// MaxRunningImports is how many imports process at once.
	MaxRunningImports = 2
	// MaxQueuedImports is how many imports may wait, including the running
	// ones; one more answers 1016.
	MaxQueuedImports = 10
	// maxStringLen is the length past which string values are truncated
	// (with a warning) by bulk import.
	maxStringLen = 255
)

// Import statuses.
const (
	importQueued    = "Queued"
	importImporting = "Importing"
	importComplete  = "Complete"
	importFailed    = "Failed"
)

// importState holds the bulk import jobs.
type importState struct {
	jobs   map[int64]*importJob
	active []*importJob // Queued and Importing jobs, oldest first
	next   int64
}

func (s *importState) init() {
	s.jobs = make(map[int64]*importJob)
	s.next = firstBatchID
}

// importJob is one bulk import batch.
type importJob struct {
	id       int64
	format   string // csv, tsv or ssv
	lookup   fieldDef
	listID   int64
	header   []string   // the file's header, as written
	fields   []fieldDef // the field of each column
	rows     [][]string // data rows, dropped once applied
	nrows    int
	status   string
	fail     bool // an injected failure
	queuedAt time.Time
	startAt  time.Time
	finishAt time.Time

	processed int64
	members   int64
	failures  [][]string // row values plus the reason
	warnings  [][]string
	message   string
}

// delimiter returns the field separator of a bulk file format.
func delimiter(format string) rune {
	switch strings.ToLower(format) {
	case "tsv":
		return '\t'
	case "ssv":
		return ';'
	}
	return ','
}

// parseImportFile reads a bulk import file: a header row of field names and
// data rows, separated per format (csv ",", tsv tab, ssv ";"). A UTF-8 byte
// order mark is ignored. Rows may have a different number of values than
// the header; they fail one by one when applied.
func parseImportFile(data []byte, format string) (header []string, rows [][]string, err error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return nil, nil, errors.New("file is not valid UTF-8")
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = delimiter(format)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	header, err = r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, errors.New("file is empty: the first row must be a header of field names")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading header: %w", err)
	}
	seen := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		if h == "" {
			return nil, nil, fmt.Errorf("column %d of the header is empty", i+1)
		}
		if j, ok := seen[strings.ToLower(h)]; ok {
			return nil, nil, fmt.Errorf("column %d of the header repeats column %d (%q)", i+1, j+1, h)
		}
		seen[strings.ToLower(h)] = i
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return header, rows, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading rows: %w", err)
		}
		rows = append(rows, rec)
	}
}

// importCreated is the answer to an import's creation.
type importCreated struct {
	BatchID  int64  `json:"batchId"`
	ImportID string `json:"importId"`
	Status   string `json:"status"`
}

// hImportCreate answers POST /bulk/v1/leads.json: a multipart "file" part,
// with format, lookupField and listId in the query string or form fields.
func (e *Emulator) hImportCreate(c *call) response {
	switch {
	case c.mtype == "multipart/invalid":
		return c.fail("613", "Invalid multipart request")
	case c.mtype != "multipart/form-data":
		return c.fail("612", "Invalid Content Type")
	case c.file == nil:
		return c.fail("1003", "Invalid data: the multipart part 'file' is missing")
	}
	format := strings.ToLower(cmp.Or(c.param("format"), "csv"))
	if format != "csv" && format != "tsv" && format != "ssv" {
		return c.fail("1003", fmt.Sprintf("Invalid data: format '%s' must be csv, tsv or ssv", c.param("format")))
	}
	lf, ok := e.schema.lookup(cmp.Or(c.param("lookupField"), "email"))
	if !ok {
		return c.fail("1006", fmt.Sprintf("Field '%s' not found", c.param("lookupField")))
	}
	if !lf.searchable || lf.name == "cookies" {
		return c.fail("1011", fmt.Sprintf("Field '%s' not supported", c.param("lookupField")))
	}
	var listID int64
	if s := c.param("listId"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return c.fail("1003", fmt.Sprintf("Invalid value '%s'. Required of type 'integer'", s))
		}
		if _, ok := e.lists[n]; !ok {
			return c.fail("1013", "Static list not found")
		}
		listID = n
	}
	if len(e.imports.active) >= MaxQueuedImports {
		return c.fail("1016", "Too many imports")
	}
	if listID != 0 {
		for _, j := range e.imports.active {
			if j.listID == listID {
				return c.fail("1019", "Import in progress")
			}
		}
	}
	header, rows, err := parseImportFile(c.file.data, format)
	if err != nil {
		return c.fail("1003", "Invalid data: "+err.Error())
	}
	fields := make([]fieldDef, len(header))
	hasLookup := false
	for i, h := range header {
		f, ok := e.schema.lookup(h)
		if !ok {
			return c.fail("1006", fmt.Sprintf("Field '%s' not found", h))
		}
		if f.readOnly && !(f.name == "id" && lf.name == "id") {
			return c.fail("1003", fmt.Sprintf("Invalid data: column '%s' is read only", h))
		}
		fields[i] = f
		hasLookup = hasLookup || f.name == lf.name
	}
	if !hasLookup {
		return c.fail("1003", fmt.Sprintf("Invalid data: the lookup field '%s' is not a column of the file", lf.name))
	}
	j := &importJob{
		id: e.imports.next, format: format, lookup: lf, listID: listID,
		header: header, fields: fields, rows: rows, nrows: len(rows),
		status: importQueued, fail: e.drawImportFailureLocked(), queuedAt: c.now,
	}
	e.imports.next++
	e.imports.jobs[j.id] = j
	e.imports.active = append(e.imports.active, j)
	e.startImportsLocked(c.now)
	return c.ok([]importCreated{{BatchID: j.id, ImportID: strconv.FormatInt(j.id, 10), Status: j.status}})
}

// startImportsLocked starts queued imports, oldest first, while fewer than
// MaxRunningImports are importing.
func (e *Emulator) startImportsLocked(t time.Time) {
	running := 0
	for _, j := range e.imports.active {
		if j.status == importImporting {
			running++
		}
	}
	for _, j := range e.imports.active {
		if running >= MaxRunningImports {
			return
		}
		if j.status != importQueued {
			continue
		}
		j.status = importImporting
		j.startAt = t
		j.finishAt = t
		if rate := e.cfg.ImportRowsPerSec; rate > 0 {
			j.finishAt = t.Add(time.Duration(float64(j.nrows) / float64(rate) * float64(time.Second)))
		}
		running++
	}
}

// finishImportLocked applies a finished import's rows.
func (e *Emulator) finishImportLocked(j *importJob) {
	defer func() { j.rows = nil }()
	t := j.finishAt
	if j.fail {
		j.status = importFailed
		j.message = "Import failed: an internal error occurred while importing the file (emulated fault)"
		return
	}
	list := e.lists[j.listID]
	var failed int64
	for _, row := range j.rows {
		reason, warning := e.importRowLocked(j, row, list, t)
		switch {
		case reason != "":
			failed++
			j.failures = append(j.failures, append(append([]string(nil), row...), reason))
		case warning != "":
			j.warnings = append(j.warnings, append(append([]string(nil), row...), warning))
		}
	}
	j.status = importComplete
	members := ""
	if list != nil {
		members = fmt.Sprintf(" (%d members)", j.members)
	}
	if failed == 0 {
		j.message = fmt.Sprintf("Import succeeded, %d records imported%s", j.processed, members)
	} else {
		j.message = fmt.Sprintf("Import completed with errors, %d records imported%s, %d failed", j.processed, members, failed)
	}
}

// importRowLocked applies one row; it returns the failure reason, or a
// warning for a row that was imported.
func (e *Emulator) importRowLocked(j *importJob, row []string, list *staticList, t time.Time) (reason, warning string) {
	if len(row) != len(j.fields) {
		return fmt.Sprintf("Invalid row: %d values for %d columns", len(row), len(j.fields)), ""
	}
	var key string
	var warnings []string
	values := make([]string, len(row))
	for i, v := range row {
		f := j.fields[i]
		if v == "" {
			continue
		}
		if bad := checkValue(f, v); bad != "" {
			if bad == "email" {
				return "Invalid email format", ""
			}
			return fmt.Sprintf("Invalid value '%s' for field '%s' of type '%s'", v, f.name, bad), ""
		}
		if (f.typ == "string" || f.typ == "email") && utf8.RuneCountInString(v) > maxStringLen {
			v = string([]rune(v)[:maxStringLen])
			warnings = append(warnings, fmt.Sprintf("Value of field '%s' truncated to %d characters", f.name, maxStringLen))
		}
		values[i] = v
		if f.name == j.lookup.name {
			key = v
		}
	}
	if key == "" {
		return fmt.Sprintf("Missing value for lookup field '%s'", j.lookup.name), ""
	}
	matches := e.findLocked(j.lookup, []string{key})
	var id int64
	switch {
	case len(matches) == 0 && j.lookup.name == "id":
		return "Lead not found", ""
	case len(matches) == 0:
		id = e.leads.create(t)
	default:
		id = e.leads.mostRecent(matches)
		if len(matches) > 1 {
			warnings = append(warnings, "Multiple leads match the lookup criteria; the most recently updated one was updated")
		}
	}
	for i, v := range values {
		if v != "" && j.fields[i].name != "id" {
			e.leads.set(id, j.fields[i].name, v)
		}
	}
	e.leads.get(id).updated = t.Unix()
	j.processed++
	if list != nil {
		list.members.add(id)
		list.updated = t
		j.members++
	}
	return "", strings.Join(warnings, "; ")
}

// importStatus is the answer of the batch status endpoint.
type importStatus struct {
	BatchID              int64  `json:"batchId"`
	ImportID             string `json:"importId"`
	Status               string `json:"status"`
	NumOfLeadsProcessed  int64  `json:"numOfLeadsProcessed"`
	NumOfRowsFailed      int64  `json:"numOfRowsFailed"`
	NumOfRowsWithWarning int64  `json:"numOfRowsWithWarning"`
	Message              string `json:"message,omitempty"`
}

func (e *Emulator) importStatusJSON(j *importJob, now time.Time) importStatus {
	st := importStatus{
		BatchID: j.id, ImportID: strconv.FormatInt(j.id, 10), Status: j.status,
		NumOfLeadsProcessed: j.processed, NumOfRowsFailed: int64(len(j.failures)),
		NumOfRowsWithWarning: int64(len(j.warnings)), Message: j.message,
	}
	switch j.status {
	case importQueued:
		st.Message = "Import queued"
	case importImporting:
		if total := j.finishAt.Sub(j.startAt); total > 0 {
			st.NumOfLeadsProcessed = int64(float64(j.nrows) * float64(now.Sub(j.startAt)) / float64(total))
		}
		st.Message = "Import in progress"
	}
	return st
}

// importJobOr1013 returns the batch named by the path.
func (c *call) importJobOr1013() (*importJob, *response) {
	j, ok := c.e.imports.jobs[c.pathID(0)]
	if !ok {
		r := c.fail("1013", "Import batch not found")
		return nil, &r
	}
	return j, nil
}

// hImportStatus answers GET /bulk/v1/leads/batch/{id}.json.
func (e *Emulator) hImportStatus(c *call) response {
	j, bad := c.importJobOr1013()
	if bad != nil {
		return *bad
	}
	return c.ok([]importStatus{e.importStatusJSON(j, c.now)})
}

// hImportFailures answers GET /bulk/v1/leads/batch/{id}/failures.json: the
// failed rows in the import's format with an "Import Failure Reason"
// column (only the header while nothing failed).
func (e *Emulator) hImportFailures(c *call) response {
	j, bad := c.importJobOr1013()
	if bad != nil {
		return *bad
	}
	return importReport(j, "Import Failure Reason", j.failures)
}

// hImportWarnings answers GET /bulk/v1/leads/batch/{id}/warnings.json, like
// failures.json with an "Import Warning Reason" column.
func (e *Emulator) hImportWarnings(c *call) response {
	j, bad := c.importJobOr1013()
	if bad != nil {
		return *bad
	}
	return importReport(j, "Import Warning Reason", j.warnings)
}

func importReport(j *importJob, reasonColumn string, rows [][]string) response {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Comma = delimiter(j.format)
	_ = w.Write(append(append([]string(nil), j.header...), reasonColumn))
	_ = w.WriteAll(rows)
	return response{contentType: "text/csv;charset=UTF-8", body: buf.Bytes()}
}

// listBusyLocked reports whether an unfinished import or extract uses the
// list.
func (e *Emulator) listBusyLocked(listID int64) bool {
	for _, j := range e.imports.active {
		if j.listID == listID {
			return true
		}
	}
	for _, j := range e.exports.active {
		if j.listID == listID {
			return true
		}
	}
	return false
}

// advanceLocked brings bulk jobs up to now: it finishes every import and
// extract due by now, in time order, starting the queued ones as slots
// free. It runs before every call and Go API access, so a job's effects
// (membership, extract snapshots) happen in the order of the clock.
func (e *Emulator) advanceLocked(now time.Time) {
	for {
		var ij *importJob
		for _, j := range e.imports.active {
			if j.status == importImporting && !j.finishAt.After(now) && (ij == nil || j.finishAt.Before(ij.finishAt)) {
				ij = j
			}
		}
		var ej *exportJob
		for _, j := range e.exports.active {
			if j.status == exportProcessing && !j.finishAt.After(now) && (ej == nil || j.finishAt.Before(ej.finishAt)) {
				ej = j
			}
		}
		switch {
		case ij == nil && ej == nil:
			return
		case ij != nil && (ej == nil || !ej.finishAt.Before(ij.finishAt)):
			e.finishImportLocked(ij)
			e.imports.active = removeJob(e.imports.active, ij)
			e.startImportsLocked(ij.finishAt)
		default:
			e.finishExportLocked(ej)
			e.exports.active = removeJob(e.exports.active, ej)
			e.startExportsLocked(ej.finishAt)
		}
	}
}

func removeJob[T comparable](s []T, j T) []T {
	for i, x := range s {
		if x == j {
			return append(s[:i:i], s[i+1:]...)
		}
	}
	return s
}

// ImportStatus describes a bulk import for the Go API.
type ImportStatus struct {
	BatchID         int64
	Status          string // Queued, Importing, Complete or Failed
	LeadsProcessed  int64
	RowsFailed      int64
	RowsWithWarning int64
	Message         string
}

// Imports returns every bulk import, oldest first, as the status endpoint
// would report it now.
func (e *Emulator) Imports() []ImportStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.advanceLocked(now)
	out := make([]ImportStatus, 0, len(e.imports.jobs))
	for id := int64(firstBatchID); id < e.imports.next; id++ {
		st := e.importStatusJSON(e.imports.jobs[id], now)
		out = append(out, ImportStatus{
			BatchID: st.BatchID, Status: st.Status, LeadsProcessed: st.NumOfLeadsProcessed,
			RowsFailed: st.NumOfRowsFailed, RowsWithWarning: st.NumOfRowsWithWarning, Message: st.Message,
		})
	}
	return out
}
