package marketo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// AddToList creates or updates the leads with their fields and adds them to
// the list, reporting each batch's outcomes through commit as soon as
// Marketo has confirmed it. Rows that no call carried (the context ended,
// the daily quota ran out) are not reported: they stay NotAttempted.
//
// Small sets go through the REST calls, large ones through a bulk import;
// see [Client.chooseBulkAdd]. A bulk import's blank cell leaves the lead's
// field as it is, so the leads marked [Lead.Clears] that have an empty
// value go through the REST calls, which set it empty, before the import.
func (c *Client) AddToList(ctx context.Context, p AddParams, commit CommitFunc) error {
	a, err := c.prepareAdd(p, commit)
	if err != nil {
		return err
	}
	if len(a.uniq) == 0 {
		return nil
	}
	clears := a.takeClears()
	if !c.chooseBulkAdd(len(a.uniq)) {
		a.uniq = append(a.uniq, clears...)
		return unwrapCommit(a.rest(ctx))
	}
	if len(clears) > 0 {
		r := *a
		r.uniq = clears
		if err := r.rest(ctx); err != nil {
			return unwrapCommit(err)
		}
	}
	return unwrapCommit(a.bulk(ctx))
}

// takeClears removes from a.uniq, and returns, the leads marked Clears that
// have an empty value: those an import would not clear.
func (a *adder) takeClears() []int {
	var clears []int
	keep := a.uniq[:0]
	for _, i := range a.uniq {
		if l := &a.p.Leads[i]; l.Clears && slices.Contains(l.Values, "") {
			clears = append(clears, i)
			continue
		}
		keep = append(keep, i)
	}
	a.uniq = keep
	return clears
}

// commitError carries an error of the caller's CommitFunc up through the
// client's wrapping, so that it is returned as is.
type commitError struct{ err error }

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

func unwrapCommit(err error) error {
	var ce *commitError
	if errors.As(err, &ce) {
		return ce.err
	}
	return err
}

// chooseBulkAdd decides between the REST path and a bulk import for n
// distinct leads, by API calls first and latency second:
//
//   - REST: createOrUpdate and add-to-list, 300 leads each, so 2·⌈n/300⌉
//     calls, each answered within a second or two, with every lead id known
//     at once (later removals then need no lookup).
//   - Bulk import: 1 submit per file of up to 10 MB (hundreds of thousands
//     of rows), status polls every 5 to 30 s while Marketo works through its
//     queue (typically 3 or 4 for a small file), and 0 to 2 reads of
//     failures and warnings: about 6 calls, and tens of seconds, for any n
//     that fits one file. Lead ids are not returned.
//
// REST costs no more calls up to 3 batches (900 leads: 6 calls) and is
// faster there, so imports start at BulkAddMinRows = 901. Beyond that the
// import is both cheaper (10,000 leads: about 6 calls instead of 68) and,
// under the 100-calls-per-20-s limit, faster too.
func (c *Client) chooseBulkAdd(n int) bool { return n >= c.cfg.BulkAddMinRows }

// adder holds one AddToList operation.
type adder struct {
	c      *Client
	p      AddParams
	lookup string
	header []string
	commit CommitFunc
	// uniq holds the index of the first lead of each distinct key; dups maps
	// it to the indexes of later leads with the same key, which share its
	// outcome.
	uniq []int
	dups map[int][]int

	// mu serialises commit, also between the copies of an adder that
	// push parts of one AddToList.
	mu *sync.Mutex
}

func (c *Client) prepareAdd(p AddParams, commit CommitFunc) (*adder, error) {
	if p.ListID <= 0 {
		return nil, fmt.Errorf("adding to list: list id %d is not positive", p.ListID)
	}
	if commit == nil {
		return nil, errors.New("adding to list: commit func is nil")
	}
	lookup := lookupField(p.LookupField)
	header, err := importHeader(lookup, p.FieldNames)
	if err != nil {
		return nil, fmt.Errorf("adding to list %d: %w", p.ListID, err)
	}
	a := &adder{c: c, p: p, lookup: lookup, header: header, commit: commit, dups: map[int][]int{}, mu: new(sync.Mutex),
		uniq: make([]int, 0, len(p.Leads))}
	first := make(map[string]int, len(p.Leads))
	for i, l := range p.Leads {
		if strings.TrimSpace(l.Key) == "" {
			return nil, fmt.Errorf("adding to list %d: lead %d has an empty %s", p.ListID, i+1, lookup)
		}
		if len(l.Values) != len(p.FieldNames) {
			return nil, fmt.Errorf("adding to list %d: lead %q has %d values for %d field names", p.ListID, l.Key, len(l.Values), len(p.FieldNames))
		}
		k := matchKey(l.Key)
		if j, ok := first[k]; ok {
			a.dups[j] = append(a.dups[j], i)
			continue
		}
		first[k] = i
		a.uniq = append(a.uniq, i)
	}
	return a, nil
}

// report commits the outcome outs[j] of each lead rows[j] (lead indexes,
// in the order of uniq), repeated for the later leads with its key, and
// skipping those left NotAttempted. When every lead has an outcome and none
// has a duplicate, outs itself is committed, with its keys filled in.
func (a *adder) report(ctx context.Context, rows []int, outs []Outcome) error {
	n, extra := 0, 0
	for j, i := range rows {
		if outs[j].Status != NotAttempted {
			n++
			extra += len(a.dups[i])
		}
	}
	if n == 0 {
		return nil
	}
	all := outs
	if n == len(rows) && extra == 0 {
		for j, i := range rows {
			all[j].Key = a.p.Leads[i].Key
		}
	} else {
		all = make([]Outcome, 0, n+extra)
		for j, i := range rows {
			o := outs[j]
			if o.Status == NotAttempted {
				continue
			}
			o.Key = a.p.Leads[i].Key
			all = append(all, o)
			for _, d := range a.dups[i] {
				o.Key = a.p.Leads[d].Key
				all = append(all, o)
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.commit(ctx, all); err != nil {
		return &commitError{err}
	}
	return nil
}

// rejectAll returns the same rejection for each of n rows.
func rejectAll(n int, code, reason string) []Outcome {
	outs := make([]Outcome, n)
	for j := range outs {
		outs[j] = Outcome{Status: Rejected, Code: code, Reason: reason}
	}
	return outs
}

// ---- REST path ----

// rest sends batches of up to 300 leads through createOrUpdate and then
// add-to-list, several batches at a time (the limiter paces the calls).
// After an error no new batch starts; batches in flight finish and commit.
func (a *adder) rest(ctx context.Context) error {
	batches, tooLarge, err := a.restBatches()
	if err != nil {
		return err
	}
	if len(tooLarge) > 0 {
		// One oversized lead is that lead's problem, not the whole push's:
		// it is rejected, as the bulk path rejects a row too large for a
		// file, and the others go on.
		outs := rejectAll(len(tooLarge), "too_large", fmt.Sprintf(
			"the lead's fields pass Marketo's %d-byte request limit", a.c.cfg.MaxBodyBytes))
		if err := a.report(ctx, tooLarge, outs); err != nil {
			return err
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, min(a.c.cfg.MaxConcurrency, len(batches)))
	for _, b := range batches {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		mu.Lock()
		if firstErr == nil && ctx.Err() != nil {
			firstErr = ctx.Err()
		}
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := a.restBatch(ctx, b); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("adding to list %d: %w", a.p.ListID, firstErr)
	}
	return nil
}

// restBatch is a batch of lead indexes and their encoded createOrUpdate
// input records.
type restBatch struct {
	idx   []int
	input []json.RawMessage
}

// restBatches packs leads into batches of at most 300 records and at most
// MaxBodyBytes of JSON. tooLarge holds the leads whose record alone does not
// fit in a request.
func (a *adder) restBatches() (out []restBatch, tooLarge []int, err error) {
	const overhead = 128 // {"action":...,"lookupField":...,"input":[...]}
	var cur restBatch
	size := overhead
	for _, i := range a.uniq {
		l := a.p.Leads[i]
		rec := make(map[string]string, len(l.Values)+1)
		for j, f := range a.p.FieldNames {
			rec[f] = l.Values[j]
		}
		rec[a.lookup] = l.Key
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding lead %q: %w", l.Key, err)
		}
		if overhead+len(b)+1 > a.c.cfg.MaxBodyBytes {
			tooLarge = append(tooLarge, i)
			continue
		}
		if len(cur.idx) == batchMax || size+len(b)+1 > a.c.cfg.MaxBodyBytes {
			out = append(out, cur)
			cur = restBatch{}
			size = overhead
		}
		cur.idx = append(cur.idx, i)
		cur.input = append(cur.input, b)
		size += len(b) + 1
	}
	if len(cur.idx) > 0 {
		out = append(out, cur)
	}
	return out, tooLarge, nil
}

// recordResult is one entry of a Lead Database call's per-record result.
type recordResult struct {
	ID      flexInt       `json:"id"`
	Status  string        `json:"status"`
	Reasons []codeMessage `json:"reasons"`
}

func (r recordResult) reason() (string, string) {
	if len(r.Reasons) == 0 {
		return "", "status " + strconv.Quote(r.Status) + " without a reason"
	}
	msgs := make([]string, 0, len(r.Reasons))
	for _, x := range r.Reasons {
		msgs = append(msgs, x.Message)
	}
	return string(r.Reasons[0].Code), strings.Join(msgs, "; ")
}

func (a *adder) restBatch(ctx context.Context, b restBatch) error {
	r, err := jsonRequest(http.MethodPost, "/rest/v1/leads.json", "POST /rest/v1/leads.json", map[string]any{
		"action":      "createOrUpdate",
		"lookupField": a.lookup,
		"input":       b.input,
	})
	if err != nil {
		return err
	}
	env, err := a.c.call(ctx, r)
	if err != nil {
		return fmt.Errorf("creating or updating leads: %w", err)
	}
	var res []recordResult
	if err := decodeResult(env, r.label, &res); err != nil {
		return err
	}
	// Marketo documents the results of createOrUpdate in input order and
	// gives no key to match them by; a count that differs means the order
	// cannot be trusted, and the batch is not reported (it is re-sent on a
	// later run, which is harmless).
	if len(res) != len(b.idx) {
		return fmt.Errorf("creating or updating leads: %d results for %d leads", len(res), len(b.idx))
	}
	// outs[j] is the outcome of lead b.idx[j].
	outs := make([]Outcome, len(b.idx))
	ids := make([]int64, 0, len(b.idx))
	byID := make(map[int64]int, len(b.idx))
	for j, rr := range res {
		switch {
		case (rr.Status == "created" || rr.Status == "updated") && rr.ID > 0:
			id := int64(rr.ID)
			if _, seen := byID[id]; seen {
				// Distinct keys cannot be one lead: the results are not in
				// input order after all.
				return fmt.Errorf("creating or updating leads: lead %d answered for two distinct keys", id)
			}
			ids = append(ids, id)
			byID[id] = j
		case rr.Status == "created" || rr.Status == "updated":
			outs[j] = Outcome{Status: Rejected, Reason: "Marketo " + rr.Status + " the lead without returning its id"}
		default:
			code, reason := rr.reason()
			outs[j] = Outcome{Status: Rejected, Code: code, Reason: reason}
		}
	}
	if len(ids) > 0 {
		added, err := a.c.addIDs(ctx, a.p.ListID, ids)
		if err != nil {
			// The leads were created or updated but not added: only the
			// rejections are known.
			if cerr := a.report(ctx, b.idx, outs); cerr != nil {
				return cerr
			}
			return err
		}
		for id, j := range byID {
			o, ok := added[id]
			if !ok {
				o = Outcome{Status: Rejected, Reason: "Marketo returned no result for lead " + strconv.FormatInt(id, 10)}
			}
			o.LeadID = id
			outs[j] = o
		}
	}
	return a.report(ctx, b.idx, outs)
}

// addIDs adds at most 300 lead ids to a list and returns each id's outcome,
// matched by id.
func (c *Client) addIDs(ctx context.Context, listID int64, ids []int64) (map[int64]Outcome, error) {
	q := url.Values{}
	for _, id := range ids {
		q.Add("id", strconv.FormatInt(id, 10))
	}
	r := &request{
		method: http.MethodPost,
		path:   "/rest/v1/lists/" + strconv.FormatInt(listID, 10) + "/leads.json",
		label:  "POST /rest/v1/lists/{id}/leads.json",
		query:  q,
	}
	env, err := c.call(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("adding leads to list: %w", listErr(listID, err))
	}
	var res []recordResult
	if err := decodeResult(env, r.label, &res); err != nil {
		return nil, err
	}
	out := make(map[int64]Outcome, len(res))
	for _, rr := range res {
		id := int64(rr.ID)
		if rr.Status == "added" {
			out[id] = Outcome{Status: Confirmed, LeadID: id}
			continue
		}
		code, reason := rr.reason()
		out[id] = Outcome{Status: Rejected, LeadID: id, Code: code, Reason: reason}
	}
	return out, nil
}

// listErr turns Marketo's "object not found" for a list into ErrListNotFound.
func listErr(listID int64, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%w: list %d (%w)", ErrListNotFound, listID, err)
	}
	return err
}

// ---- bulk import path ----

// bulk imports the leads in files of up to ImportMaxBytes, one after the
// other (Marketo refuses a second import into a list that is importing,
// 1019), committing each file's outcomes when its import is done.
//
// The files are planned first (which leads go in which, and their sizes);
// each is written just before it is sent and dropped once its import is
// done, so that one file at a time is held in memory.
func (a *adder) bulk(ctx context.Context) error {
	files, tooLarge, err := planImportFiles(a.header, a.p.Leads, a.uniq, a.c.cfg.ImportMaxBytes)
	if err != nil {
		return fmt.Errorf("adding to list %d: %w", a.p.ListID, err)
	}
	if len(tooLarge) > 0 {
		outs := rejectAll(len(tooLarge), "too_large", fmt.Sprintf("the lead's row passes the %d-byte import file limit", a.c.cfg.ImportMaxBytes))
		if err := a.report(ctx, tooLarge, outs); err != nil {
			return err
		}
	}
	for n, f := range files {
		outs, err := a.importFile(ctx, f)
		if err != nil {
			return fmt.Errorf("adding to list %d (import file %d of %d): %w", a.p.ListID, n+1, len(files), err)
		}
		if err := a.report(ctx, f.rows, outs); err != nil {
			return err
		}
	}
	return nil
}

// importStatus is a bulk import's status.
type importStatus struct {
	BatchID              flexInt `json:"batchId"`
	Status               string  `json:"status"`
	NumOfLeadsProcessed  flexInt `json:"numOfLeadsProcessed"`
	NumOfRowsFailed      flexInt `json:"numOfRowsFailed"`
	NumOfRowsWithWarning flexInt `json:"numOfRowsWithWarning"`
	Message              string  `json:"message"`
}

// importFile imports one file and returns the outcome of each of its rows,
// in the order of f.rows.
func (a *adder) importFile(ctx context.Context, f importFile) ([]Outcome, error) {
	st, rejected, err := a.runImport(ctx, f)
	if err != nil || rejected != nil {
		return rejected, err
	}
	return a.importOutcomes(ctx, f, st)
}

// runImport writes a file, submits it and waits for its import to be
// Complete, submitting it again up to ImportResubmits times when it ends
// Failed. When the file is refused or keeps failing, it returns the
// rejection of every row instead. The file's bytes are held only meanwhile:
// reading the outcomes and committing them does without.
func (a *adder) runImport(ctx context.Context, f importFile) (importStatus, []Outcome, error) {
	data, err := writeImportFile(a.header, a.p.Leads, f)
	if err != nil {
		return importStatus{}, nil, err
	}
	body, contentType, err := multipartFile(data)
	if err != nil {
		return importStatus{}, nil, err
	}
	for try := 0; ; try++ {
		st, err := a.c.submitImport(ctx, a.p.ListID, a.lookup, body, contentType)
		submitted := a.c.now()
		if err != nil {
			var ae *APIError
			if errors.As(err, &ae) && ae.Class() == ClassPermanent && strings.HasPrefix(ae.Code, "10") && !isNotFound(err) {
				// The file itself is refused (an unknown field, say): every
				// row of it is rejected with Marketo's reason.
				return importStatus{}, rejectAll(len(f.rows), ae.Code, ae.Message), nil
			}
			return importStatus{}, nil, listErr(a.p.ListID, err)
		}
		if st.Status != "Failed" {
			st, err = a.c.pollImport(ctx, int64(st.BatchID), len(f.rows), importSeen{at: submitted, status: st.Status})
			if err != nil {
				return importStatus{}, nil, err
			}
		}
		if st.Status == "Failed" {
			if try < a.c.cfg.ImportResubmits {
				a.c.log.Warn("bulk import failed; submitting it again", zap.Int64("batch", int64(st.BatchID)), zap.String("message", st.Message))
				continue
			}
			return importStatus{}, rejectAll(len(f.rows), "import_failed", "bulk import failed: "+cmpOr(st.Message, "no message")), nil
		}
		return st, nil, nil
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// importOutcomes reads a complete import's failures and warnings and
// attributes them to rows by lookup value: failed rows are rejected with
// Marketo's reason, the others confirmed (a warning rides along as Reason).
// The outcomes are in the order of f.rows.
func (a *adder) importOutcomes(ctx context.Context, f importFile, st importStatus) ([]Outcome, error) {
	id := int64(st.BatchID)
	var failures, warnings map[string]string
	var err error
	if st.NumOfRowsFailed > 0 {
		failures, err = a.c.importReasons(ctx, id, "failures", a.lookup, "Import Failure Reason")
		if err != nil {
			return nil, err
		}
	}
	if st.NumOfRowsWithWarning > 0 {
		warnings, err = a.c.importReasons(ctx, id, "warnings", a.lookup, "Import Warning Reason")
		if err != nil {
			return nil, err
		}
	}
	outs := make([]Outcome, len(f.rows))
	failed := 0
	for j, i := range f.rows {
		k := matchKey(a.p.Leads[i].Key)
		if reason, ok := failures[k]; ok {
			outs[j] = Outcome{Status: Rejected, Reason: reason}
			failed++
			continue
		}
		outs[j] = Outcome{Status: Confirmed, Reason: warnings[k]}
	}
	if int64(failed) < int64(st.NumOfRowsFailed) {
		a.c.log.Warn("bulk import reports more failed rows than its failures file attributes",
			zap.Int64("batch", id), zap.Int64("failed", int64(st.NumOfRowsFailed)), zap.Int("attributed", failed))
	}
	return outs, nil
}

// multipartFile wraps an import file in a multipart/form-data body with the
// part "file" that Marketo reads, in three pieces sent one after the other:
// the part's header, the file itself (not copied) and the closing boundary.
func multipartFile(data []byte) (body [][]byte, contentType string, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", `form-data; name="file"; filename="listsync.csv"`)
	h.Set("Content-Type", "text/csv")
	if _, err := mw.CreatePart(h); err != nil {
		return nil, "", fmt.Errorf("building import body: %w", err)
	}
	head := buf.Len()
	// The part's bytes would go here; Close adds the closing boundary.
	if err := mw.Close(); err != nil {
		return nil, "", fmt.Errorf("building import body: %w", err)
	}
	b := buf.Bytes()
	return [][]byte{b[:head:head], data, b[head:]}, mw.FormDataContentType(), nil
}

func (c *Client) submitImport(ctx context.Context, listID int64, lookup string, body [][]byte, contentType string) (importStatus, error) {
	r := &request{
		method: http.MethodPost,
		path:   "/bulk/v1/leads.json",
		label:  "POST /bulk/v1/leads.json",
		query: url.Values{
			"format":      {"csv"},
			"lookupField": {lookup},
			"listId":      {strconv.FormatInt(listID, 10)},
		},
		body:        body,
		contentType: contentType,
	}
	env, err := c.call(ctx, r)
	if err != nil {
		return importStatus{}, fmt.Errorf("submitting bulk import: %w", err)
	}
	var res []importStatus
	if err := decodeResult(env, r.label, &res); err != nil {
		return importStatus{}, err
	}
	if len(res) == 0 || res[0].BatchID == 0 {
		return importStatus{}, fmt.Errorf("submitting bulk import: Marketo answered no batch id")
	}
	return res[0], nil
}

// importSeen is one reading of an import's progress: when it was taken,
// the status, and how many rows Marketo had worked through.
type importSeen struct {
	at     time.Time
	status string
	done   int64
}

// pollImport reads an import of rows rows, submitted as first says, until it
// is Complete or Failed.
//
// Each read is timed from what the one before said. While the import is
// Importing with rows worked through since the reading before (submission
// counts, with none done, whether it answered Queued or Importing: time in
// the queue only makes the rate seem slower), the next read is set for the
// projected end, remaining rows over the rate seen, plus a twentieth and a
// fifth of ImportPollInitial. Without such progress (still Queued, no
// counts, a clock that did not move) it falls back to an interval growing
// by half each time, within ImportPollInitial–ImportPollMax. A projected
// wait may run longer than ImportPollMax, up to projectedPollFactor times
// it: Marketo's 5–30 s is advice on how often to read at most, and reading
// once at the projected end is what spends the fewest calls (a 100,000-row
// import at 2,000 rows/s: reads at 5 s and about 53 s, not 5, 35 and 52).
//
// The client remembers the rate it measured on its last import whose
// progress it read (or starts from Config.ImportRate, the rate an earlier
// process measured): the next import's first read is set for the end that
// rate projects instead of at ImportPollInitial, so that one read usually
// finds it Complete (the first sync's later import files, every import of a
// long-running worker after its first, every import of a run started by
// cron when the rate is kept across processes). A first read that finds it
// still Importing measures the rate afresh, so a rate that is too fast (the
// instance has slowed down since) costs one read more and is replaced. One
// that is too slow (its measurement counted time the import spent in
// Marketo's queue, as a small import's may) costs time, not calls: the read
// comes late, by at most projectedPollFactor × ImportPollMax.
func (c *Client) pollImport(ctx context.Context, batchID int64, rows int, first importSeen) (importStatus, error) {
	r := &request{
		method:   http.MethodGet,
		path:     "/bulk/v1/leads/batch/" + strconv.FormatInt(batchID, 10) + ".json",
		label:    "GET /bulk/v1/leads/batch/{id}.json",
		retry613: true,
	}
	prev := first
	backoff := c.cfg.ImportPollInitial
	wait := backoff
	if rate := c.learnedImportRate(); rate > 0 && (first.status == "Importing" || first.status == "Queued") {
		// The instance's speed is known from an earlier import: read first
		// where this one should end, so that a single read usually finds
		// it Complete.
		wait = c.projectedWait(time.Duration(float64(rows) / rate * float64(time.Second)))
	}
	var rate float64 // measured on this import, rows a second
	for {
		if err := sleepCtx(ctx, wait); err != nil {
			return importStatus{}, err
		}
		env, err := c.call(ctx, r)
		if err != nil {
			return importStatus{}, fmt.Errorf("reading bulk import %d status: %w", batchID, err)
		}
		var res []importStatus
		if err := decodeResult(env, r.label, &res); err != nil {
			return importStatus{}, err
		}
		if len(res) == 0 {
			return importStatus{}, fmt.Errorf("reading bulk import %d status: empty result", batchID)
		}
		st := res[0]
		switch st.Status {
		case "Complete", "Failed":
			if st.BatchID == 0 {
				st.BatchID = flexInt(batchID)
			}
			if rate > 0 && st.Status == "Complete" {
				c.learnImportRate(ctx, rate)
			}
			return st, nil
		}
		backoff = min(backoff*3/2, c.cfg.ImportPollMax)
		// A row that failed is worked through as well; a row with a
		// warning was imported and is among the leads processed.
		seen := importSeen{at: c.now(), status: st.Status, done: min(int64(st.NumOfLeadsProcessed)+int64(st.NumOfRowsFailed), int64(rows))}
		wait = backoff
		if eta, ok := projectImportEnd(prev, seen, int64(rows)); ok {
			wait = c.projectedWait(eta)
			if dt := seen.at.Sub(prev.at); dt > 0 {
				rate = float64(seen.done-prev.done) / dt.Seconds()
			}
		}
		prev = seen
	}
}

// projectedWait is the wait before reading an import projected to end in
// eta: a twentieth more and a fifth of ImportPollInitial, within
// ImportPollInitial and projectedPollFactor × ImportPollMax.
func (c *Client) projectedWait(eta time.Duration) time.Duration {
	return min(max(eta+eta/20+c.cfg.ImportPollInitial/5, c.cfg.ImportPollInitial), projectedPollFactor*c.cfg.ImportPollMax)
}

// ImportRate returns the bulk-import speed, in rows a second, that times
// the first status read of the client's next import: the one measured on
// its last import whose progress was read, or Config.ImportRate before any,
// and 0 when unknown.
func (c *Client) ImportRate() float64 { return c.learnedImportRate() }

// learnedImportRate returns the import speed measured on this client's last
// import whose progress was read (Config.ImportRate before any), or 0.
func (c *Client) learnedImportRate() float64 {
	c.importRateMu.Lock()
	defer c.importRateMu.Unlock()
	return c.importRate
}

// learnImportRate records rate, rows a second, for the next imports' first
// status read, and hands it to Config.OnImportRate.
func (c *Client) learnImportRate(ctx context.Context, rate float64) {
	c.importRateMu.Lock()
	c.importRate = rate
	c.importRateMu.Unlock()
	c.log.Debug("measured the bulk import rate", zap.Float64("rows_per_sec", rate))
	if c.onImportRate != nil {
		c.onImportRate(ctx, rate)
	}
}

// projectedPollFactor bounds a status read timed by an import's projected
// end: at most this many times ImportPollMax after the reading before.
const projectedPollFactor = 8

// projectImportEnd returns how long an import of rows rows should still take
// at the rate seen between two readings, and false when they show no
// progress to measure a rate by. A Queued reading with nothing done (the
// submission's answer) counts as the start: the rate then includes the time
// in the queue, which errs towards reading late rather than early.
func projectImportEnd(prev, cur importSeen, rows int64) (time.Duration, bool) {
	if cur.status != "Importing" || prev.status != "Importing" && (prev.status != "Queued" || prev.done != 0) {
		return 0, false
	}
	dt := cur.at.Sub(prev.at)
	delta := cur.done - prev.done
	if dt <= 0 || delta <= 0 {
		return 0, false
	}
	remaining := rows - cur.done
	if remaining <= 0 {
		return 0, true
	}
	const far = 24 * time.Hour // beyond any poll interval; keeps the product in range
	return time.Duration(min(float64(dt)*float64(remaining)/float64(delta), float64(far))), true
}

// importReasons reads failures.json or warnings.json of an import.
func (c *Client) importReasons(ctx context.Context, batchID int64, kind, lookup, column string) (map[string]string, error) {
	var out map[string]string
	r := &request{
		method: http.MethodGet,
		path:   "/bulk/v1/leads/batch/" + strconv.FormatInt(batchID, 10) + "/" + kind + ".json",
		label:  "GET /bulk/v1/leads/batch/{id}/" + kind + ".json",
		download: func(resp *http.Response) error {
			m, err := parseReasonCSV(resp.Body, lookup, column)
			if err != nil {
				return fmt.Errorf("parsing %s: %w", kind, err)
			}
			out = m
			return nil
		},
	}
	_, err := c.call(ctx, r)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.HTTPStatus == http.StatusNotFound {
			return map[string]string{}, nil
		}
		return nil, fmt.Errorf("reading bulk import %d %s: %w", batchID, kind, err)
	}
	if out == nil {
		out = map[string]string{}
	}
	return out, nil
}
