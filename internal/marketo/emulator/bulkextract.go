package emulator

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bulk extract limits, as documented (shared by every extract type in
// Marketo; the emulator has lead extracts only).
const (
	// MaxRunningExports is how many extracts process at once.
	MaxRunningExports = 2
	// MaxQueuedExports is how many extracts may be queued, including the
	// processing ones; one more answers 1029.
	MaxQueuedExports = 10
	// maxExportDateRange is the longest createdAt/updatedAt filter.
	maxExportDateRange = 31 * 24 * time.Hour
)

// Extract statuses.
const (
	exportCreated    = "Created"
	exportQueued     = "Queued"
	exportProcessing = "Processing"
	exportCompleted  = "Completed"
	exportCancelled  = "Cancelled"
	exportFailed     = "Failed"
)

// exportState holds the bulk extract jobs.
type exportState struct {
	jobs     map[string]*exportJob
	order    []*exportJob // by creation
	active   []*exportJob // Queued and Processing, oldest first
	next     int64
	dayStart time.Time
	dayBytes int64
}

func (s *exportState) init() {
	s.jobs = make(map[string]*exportJob)
	s.next = 1
}

// exportJob is one bulk lead extract.
type exportJob struct {
	id      string
	format  string // CSV, TSV or SSV
	fields  []fieldDef
	headers []string
	// The filter: exactly one of a static list (by ID or name) or a date
	// range on createdAt/updatedAt.
	listID    int64
	listName  string
	dateField string
	startAt   time.Time
	endAt     time.Time

	status     string
	createdAt  time.Time
	queuedAt   time.Time
	startedAt  time.Time
	finishedAt time.Time
	finishAt   time.Time // when a processing job completes
	file       []byte
	records    int64
	checksum   string
	errorMsg   string
}

// exportRequest is the body of POST /bulk/v1/leads/export/create.json.
type exportRequest struct {
	Fields            []string                   `json:"fields"`
	Format            string                     `json:"format"`
	ColumnHeaderNames map[string]string          `json:"columnHeaderNames"`
	Filter            map[string]json.RawMessage `json:"filter"`
}

// hExportCreate answers POST /bulk/v1/leads/export/create.json.
func (e *Emulator) hExportCreate(c *call) response {
	var req exportRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return c.fail("609", "Invalid JSON")
	}
	if len(req.Fields) == 0 {
		return c.fail("701", "fields cannot be blank")
	}
	j := &exportJob{format: strings.ToUpper(cmp.Or(req.Format, "CSV")), status: exportCreated, createdAt: c.now}
	if j.format != "CSV" && j.format != "TSV" && j.format != "SSV" {
		return c.fail("1003", fmt.Sprintf("Invalid data: format '%s' must be CSV, TSV or SSV", req.Format))
	}
	for _, n := range req.Fields {
		f, ok := e.schema.lookup(n)
		if !ok {
			return c.fail("1006", fmt.Sprintf("Field '%s' not found", n))
		}
		j.fields = append(j.fields, f)
		j.headers = append(j.headers, f.name)
	}
	for k, v := range req.ColumnHeaderNames {
		i := slices.IndexFunc(j.fields, func(f fieldDef) bool { return strings.EqualFold(f.name, k) })
		if i < 0 {
			return c.fail("1003", fmt.Sprintf("Invalid data: columnHeaderNames names '%s', which is not in fields", k))
		}
		j.headers[i] = v
	}
	if len(req.Filter) != 1 {
		return c.fail("1003", "Invalid data: filter must have exactly one filter type")
	}
	for k, raw := range req.Filter {
		switch k {
		case "staticListId":
			s, _ := rawString(raw)
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return c.fail("1003", fmt.Sprintf("Invalid value '%s'. Required of type 'integer'", raw))
			}
			if _, ok := e.lists[n]; !ok {
				return c.fail("1013", "Static list not found")
			}
			j.listID = n
		case "staticListName":
			s, ok := rawString(raw)
			id, found := e.listByName[s]
			if !ok || !found {
				return c.fail("1013", "Static list not found")
			}
			j.listID, j.listName = id, s
		case "createdAt", "updatedAt":
			var r struct {
				StartAt string `json:"startAt"`
				EndAt   string `json:"endAt"`
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return c.fail("1003", fmt.Sprintf("Invalid data: filter %s must be {\"startAt\":...,\"endAt\":...}", k))
			}
			start, ok1 := parseAssetTime(r.StartAt)
			end, ok2 := parseAssetTime(r.EndAt)
			if !ok1 || !ok2 {
				return c.fail("704", fmt.Sprintf("Invalid date format: %s", raw))
			}
			if end.Before(start) || end.Sub(start) > maxExportDateRange {
				return c.fail("1003", fmt.Sprintf("Invalid data: the %s range must not be negative nor exceed 31 days", k))
			}
			j.dateField, j.startAt, j.endAt = k, start, end
		default:
			return c.fail("1035", fmt.Sprintf("Unsupported filter type '%s'", k))
		}
	}
	e.exports.next++
	j.id = fmt.Sprintf("00000000-0000-4000-8000-%012d", e.exports.next-1)
	e.exports.jobs[j.id] = j
	e.exports.order = append(e.exports.order, j)
	return c.ok([]exportStatus{exportStatusJSON(j)})
}

// exportStatus is a job as the status endpoint reports it.
type exportStatus struct {
	ExportID        string `json:"exportId"`
	Format          string `json:"format"`
	Status          string `json:"status"`
	CreatedAt       string `json:"createdAt"`
	QueuedAt        string `json:"queuedAt,omitempty"`
	StartedAt       string `json:"startedAt,omitempty"`
	FinishedAt      string `json:"finishedAt,omitempty"`
	NumberOfRecords *int64 `json:"numberOfRecords,omitempty"`
	FileSize        *int64 `json:"fileSize,omitempty"`
	FileChecksum    string `json:"fileChecksum,omitempty"`
	ErrorMsg        string `json:"errorMsg,omitempty"`
}

func exportStatusJSON(j *exportJob) exportStatus {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	st := exportStatus{
		ExportID: j.id, Format: j.format, Status: j.status, CreatedAt: ts(j.createdAt),
		QueuedAt: ts(j.queuedAt), StartedAt: ts(j.startedAt), FinishedAt: ts(j.finishedAt), ErrorMsg: j.errorMsg,
	}
	if j.status == exportCompleted {
		n, size := j.records, int64(len(j.file))
		st.NumberOfRecords, st.FileSize, st.FileChecksum = &n, &size, j.checksum
	}
	return st
}

// exportJobOr1013 returns the job named by the path.
func (c *call) exportJobOr1013() (*exportJob, *response) {
	j, ok := c.e.exports.jobs[c.wild[0]]
	if !ok {
		r := c.fail("1013", "Export job not found")
		return nil, &r
	}
	return j, nil
}

// rollExportDayLocked starts a new extract quota day at midnight CST.
func (e *Emulator) rollExportDayLocked(now time.Time) {
	zone := time.FixedZone("CST", quotaOffset)
	t := now.In(zone)
	start := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, zone)
	if !start.Equal(e.exports.dayStart) {
		e.exports.dayStart, e.exports.dayBytes = start, 0
	}
}

// hExportEnqueue answers POST /bulk/v1/leads/export/{exportId}/enqueue.json.
func (e *Emulator) hExportEnqueue(c *call) response {
	j, bad := c.exportJobOr1013()
	if bad != nil {
		return *bad
	}
	switch j.status {
	case exportCreated:
	case exportQueued, exportProcessing:
		return c.fail("1029", "Job already queued")
	default:
		return c.fail("1003", fmt.Sprintf("Invalid data: export job %s is %s and cannot be enqueued", j.id, j.status))
	}
	if len(e.exports.active) >= MaxQueuedExports {
		return c.fail("1029", fmt.Sprintf("Too many jobs (%d) in queue", MaxQueuedExports))
	}
	e.rollExportDayLocked(c.now)
	if q := e.cfg.ExportDailyBytes; q > 0 && e.exports.dayBytes >= q {
		return c.fail("1029", "Export daily quota exceeded")
	}
	j.status, j.queuedAt = exportQueued, c.now
	e.exports.active = append(e.exports.active, j)
	e.startExportsLocked(c.now)
	return c.ok([]exportStatus{exportStatusJSON(j)})
}

// startExportsLocked starts queued extracts while fewer than
// MaxRunningExports process. A job reads its leads when it starts, as
// Marketo evaluates list membership when the job begins processing.
func (e *Emulator) startExportsLocked(t time.Time) {
	running := 0
	for _, j := range e.exports.active {
		if j.status == exportProcessing {
			running++
		}
	}
	for _, j := range slices.Clone(e.exports.active) {
		if running >= MaxRunningExports {
			return
		}
		if j.status != exportQueued {
			continue
		}
		j.startedAt = t
		if err := e.buildExportLocked(j); err != "" {
			j.status, j.errorMsg, j.finishedAt = exportFailed, err, t
			e.exports.active = removeJob(e.exports.active, j)
			continue
		}
		j.status = exportProcessing
		j.finishAt = t
		if d := e.cfg.ExportProcessingTime; d > 0 {
			j.finishAt = t.Add(d)
		}
		running++
	}
}

// buildExportLocked writes the job's file from the current leads; it returns
// an error message when the job cannot run.
func (e *Emulator) buildExportLocked(j *exportJob) string {
	var ids []int64
	switch {
	case j.dateField != "":
		for i := range e.leads.all {
			l := &e.leads.all[i]
			ts := l.created
			if j.dateField == "updatedAt" {
				ts = l.updated
			}
			if ts >= j.startAt.Unix() && ts <= j.endAt.Unix() {
				ids = append(ids, firstLeadID+int64(i))
			}
		}
	default:
		l, ok := e.lists[j.listID]
		if !ok || j.listName != "" && l.name != j.listName {
			return "Static list not found"
		}
		ids = l.members.all()
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Comma = delimiter(j.format)
	_ = w.Write(j.headers)
	row := make([]string, len(j.fields))
	for _, id := range ids {
		l := e.leads.get(id)
		for i, f := range j.fields {
			switch f.name {
			case "id":
				row[i] = strconv.FormatInt(id, 10)
			case "createdAt":
				row[i] = time.Unix(l.created, 0).UTC().Format(time.RFC3339)
			case "updatedAt":
				row[i] = time.Unix(l.updated, 0).UTC().Format(time.RFC3339)
			default:
				row[i] = l.value(f.name)
			}
		}
		_ = w.Write(row)
	}
	w.Flush()
	j.file = buf.Bytes()
	j.records = int64(len(ids))
	sum := sha256.Sum256(j.file)
	j.checksum = "sha256:" + hex.EncodeToString(sum[:])
	return ""
}

// finishExportLocked completes a processing extract and charges its size to
// the daily extract quota.
func (e *Emulator) finishExportLocked(j *exportJob) {
	j.status, j.finishedAt = exportCompleted, j.finishAt
	e.rollExportDayLocked(j.finishAt)
	e.exports.dayBytes += int64(len(j.file))
}

// hExportStatus answers GET /bulk/v1/leads/export/{exportId}/status.json.
func (e *Emulator) hExportStatus(c *call) response {
	j, bad := c.exportJobOr1013()
	if bad != nil {
		return *bad
	}
	return c.ok([]exportStatus{exportStatusJSON(j)})
}

// hExportFile answers GET /bulk/v1/leads/export/{exportId}/file.json,
// honouring Range requests (206 with Content-Range).
func (e *Emulator) hExportFile(c *call) response {
	j, bad := c.exportJobOr1013()
	if bad != nil {
		return *bad
	}
	if j.status != exportCompleted {
		return c.fail("1003", fmt.Sprintf("Invalid data: export job %s is %s; its file is not ready", j.id, j.status))
	}
	ctype := "text/csv;charset=UTF-8"
	if j.format == "TSV" {
		ctype = "text/tab-separated-values;charset=UTF-8"
	}
	return response{contentType: ctype, content: bytes.NewReader(j.file), modTime: j.finishedAt}
}

// hExportCancel answers POST /bulk/v1/leads/export/{exportId}/cancel.json.
func (e *Emulator) hExportCancel(c *call) response {
	j, bad := c.exportJobOr1013()
	if bad != nil {
		return *bad
	}
	switch j.status {
	case exportCreated, exportQueued, exportProcessing:
		j.status = exportCancelled
		j.file = nil
		e.exports.active = removeJob(e.exports.active, j)
		e.startExportsLocked(c.now)
	}
	return c.ok([]exportStatus{exportStatusJSON(j)})
}

// hExportList answers GET /bulk/v1/leads/export.json: the jobs of the last
// 7 days, optionally filtered by status (comma-separated).
func (e *Emulator) hExportList(c *call) response {
	want := map[string]bool{}
	for _, s := range splitList(c.params["status"]) {
		want[strings.ToLower(s)] = true
	}
	out := []exportStatus{}
	cut := c.now.Add(-7 * 24 * time.Hour)
	for _, j := range e.exports.order {
		if j.createdAt.Before(cut) || len(want) > 0 && !want[strings.ToLower(j.status)] {
			continue
		}
		out = append(out, exportStatusJSON(j))
	}
	return c.ok(out)
}

// ExportStatus describes a bulk extract for the Go API.
type ExportStatus struct {
	ExportID string
	Status   string // Created, Queued, Processing, Completed, Cancelled or Failed
	Records  int64
}

// Exports returns every bulk extract, oldest first.
func (e *Emulator) Exports() []ExportStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceLocked(e.now())
	out := make([]ExportStatus, 0, len(e.exports.order))
	for _, j := range e.exports.order {
		out = append(out, ExportStatus{ExportID: j.id, Status: j.status, Records: j.records})
	}
	return out
}

// jobCounts tallies statuses.
func jobCounts[T any](jobs []T, status func(T) string) map[string]int64 {
	m := make(map[string]int64)
	for _, j := range jobs {
		m[status(j)]++
	}
	return m
}
