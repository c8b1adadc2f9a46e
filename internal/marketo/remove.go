package marketo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// RemoveFromList removes members from the list. Members with a lead id are
// removed by id, 300 a call. The others are looked up by their key first
// (300 values a call), or, when that costs more calls than a bulk extract of
// the list, learnt from one (see [Client.chooseExtract]); a key held by
// several leads removes all of them. "removed", "not in list" (1015) and
// "lead not found" (1004) count as confirmed, as does a key no lead has;
// anything else is rejected with Marketo's reason. Outcomes are committed
// after each DELETE.
func (c *Client) RemoveFromList(ctx context.Context, p RemoveParams, commit CommitFunc) error {
	return unwrapCommit(c.removeFromList(ctx, p, commit))
}

func (c *Client) removeFromList(ctx context.Context, p RemoveParams, commit CommitFunc) error {
	if p.ListID <= 0 {
		return fmt.Errorf("removing from list: list id %d is not positive", p.ListID)
	}
	if commit == nil {
		return errors.New("removing from list: commit func is nil")
	}
	lookup := lookupField(p.LookupField)
	var known, unknown []*unit
	byKey := map[string]*unit{}
	for i, m := range p.Members {
		if m.LeadID < 0 {
			return fmt.Errorf("removing from list %d: member %d has a negative lead id", p.ListID, i+1)
		}
		if m.LeadID == 0 && strings.EqualFold(lookup, "id") {
			// The key is the lead id itself.
			id, err := strconv.ParseInt(strings.TrimSpace(m.Key), 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("removing from list %d: member %d's id %q is not a lead id", p.ListID, i+1, m.Key)
			}
			m.LeadID = id
		}
		if m.LeadID > 0 {
			known = append(known, &unit{members: []int{i}, ids: []int64{m.LeadID}})
			continue
		}
		k := matchKey(m.Key)
		if k == "" {
			return fmt.Errorf("removing from list %d: member %d has neither a lead id nor a %s", p.ListID, i+1, lookup)
		}
		if u, ok := byKey[k]; ok {
			u.members = append(u.members, i)
			continue
		}
		u := &unit{members: []int{i}, key: k}
		byKey[k] = u
		unknown = append(unknown, u)
	}
	d := newDeleter(c, p.ListID, p.Members, commit)
	var err error
	for _, u := range known {
		if err = d.add(ctx, u); err != nil {
			break
		}
	}
	if err == nil && len(unknown) > 0 {
		err = d.resolve(ctx, lookup, unknown, byKey)
	}
	// Whatever happened, wait for the DELETEs in flight and commit them.
	if ferr := d.finish(ctx); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("removing from list %d: %w", p.ListID, err)
	}
	return nil
}

// unit is one distinct member to remove: the input rows it stands for and
// the lead ids it maps to (none when no lead has its key).
type unit struct {
	members []int
	key     string
	ids     []int64

	remaining int
	rejected  bool
	code      string
	reason    string
}

type idRef struct {
	id int64
	u  *unit
}

// deleter packs lead ids into DELETE calls of 300, sends up to
// MaxConcurrency of them at once (the limiter paces them), and commits the
// outcome of each unit once all its ids are answered. After an error no new
// DELETE starts; those in flight finish and commit.
type deleter struct {
	c       *Client
	listID  int64
	members []Member
	commit  CommitFunc

	pending []idRef // not yet sent; owned by the caller's goroutine
	sem     chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex // guards the units' state, done and err
	done     []*unit    // answered, not yet committed
	err      error
	commitMu sync.Mutex // serialises commit
}

func newDeleter(c *Client, listID int64, members []Member, commit CommitFunc) *deleter {
	return &deleter{c: c, listID: listID, members: members, commit: commit, sem: make(chan struct{}, c.cfg.MaxConcurrency)}
}

// add queues a unit, sending full DELETE batches as they fill.
func (d *deleter) add(ctx context.Context, u *unit) error {
	if len(u.ids) == 0 {
		d.mu.Lock()
		d.done = append(d.done, u)
		d.mu.Unlock()
		return d.failed()
	}
	u.remaining = len(u.ids)
	for _, id := range u.ids {
		d.pending = append(d.pending, idRef{id: id, u: u})
	}
	for len(d.pending) >= batchMax {
		if err := d.send(ctx, d.pending[:batchMax:batchMax]); err != nil {
			return err
		}
		d.pending = d.pending[batchMax:]
	}
	return nil
}

func (d *deleter) failed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// send starts one DELETE when a slot is free.
func (d *deleter) send(ctx context.Context, batch []idRef) error {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := d.failed(); err != nil {
		<-d.sem
		return err
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() { <-d.sem }()
		err := d.deleteBatch(ctx, batch)
		if err == nil {
			err = d.commitDone(ctx)
		}
		if err != nil {
			d.mu.Lock()
			if d.err == nil {
				d.err = err
			}
			d.mu.Unlock()
		}
	}()
	return nil
}

// finish sends the last partial batch, waits for every DELETE and commits
// what is left.
func (d *deleter) finish(ctx context.Context) error {
	var err error
	if len(d.pending) > 0 && d.failed() == nil {
		err = d.send(ctx, d.pending)
		d.pending = nil
	}
	d.wg.Wait()
	if ferr := d.failed(); ferr != nil {
		return ferr
	}
	if err != nil {
		return err
	}
	return d.commitDone(ctx)
}

func (d *deleter) deleteBatch(ctx context.Context, batch []idRef) error {
	q := url.Values{}
	seen := make(map[int64]bool, len(batch))
	for _, r := range batch {
		if !seen[r.id] {
			seen[r.id] = true
			q.Add("id", strconv.FormatInt(r.id, 10))
		}
	}
	req := &request{
		method: http.MethodDelete,
		path:   "/rest/v1/lists/" + strconv.FormatInt(d.listID, 10) + "/leads.json",
		label:  "DELETE /rest/v1/lists/{id}/leads.json",
		query:  q,
	}
	env, err := d.c.call(ctx, req)
	if err != nil {
		return fmt.Errorf("deleting leads from list: %w", listErr(d.listID, err))
	}
	var res []recordResult
	if err := decodeResult(env, req.label, &res); err != nil {
		return err
	}
	byID := make(map[int64]recordResult, len(res))
	for _, rr := range res {
		byID[int64(rr.ID)] = rr
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range batch {
		rr, ok := byID[r.id]
		u := r.u
		u.remaining--
		switch {
		case !ok:
			u.reject("", "Marketo returned no result for lead "+strconv.FormatInt(r.id, 10))
		case rr.Status == "removed":
		default:
			code, reason := rr.reason()
			// Not in list (1015) and a lead that no longer exists (1004)
			// leave the person off the list, which is what was asked.
			if code != "1015" && code != "1004" {
				u.reject(code, reason)
			}
		}
		if u.remaining == 0 {
			d.done = append(d.done, u)
		}
	}
	return nil
}

// reject marks a unit rejected with the first reason it met.
func (u *unit) reject(code, reason string) {
	if u.rejected {
		return
	}
	u.rejected, u.code, u.reason = true, code, reason
}

// commitDone commits the outcomes of the units answered so far.
func (d *deleter) commitDone(ctx context.Context) error {
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	d.mu.Lock()
	done := d.done
	d.done = nil
	var outs []Outcome
	for _, u := range done {
		for _, i := range u.members {
			m := d.members[i]
			o := Outcome{Key: m.Key, LeadID: m.LeadID, Status: Confirmed}
			if o.LeadID == 0 && len(u.ids) > 0 {
				o.LeadID = u.ids[0]
			}
			if u.rejected {
				o.Status, o.Code, o.Reason = Rejected, u.code, u.reason
			}
			outs = append(outs, o)
		}
	}
	d.mu.Unlock()
	if len(outs) == 0 {
		return nil
	}
	if err := d.commit(ctx, outs); err != nil {
		return &commitError{err}
	}
	return nil
}

// resolve learns the lead ids of units known only by key, by lookups or by
// a bulk extract of the list, and queues them for deletion.
func (d *deleter) resolve(ctx context.Context, lookup string, units []*unit, byKey map[string]*unit) error {
	if d.c.chooseExtract(len(units)) {
		err := d.c.extractMembers(ctx, d.listID, lookup, func(m Member) error {
			if u, ok := byKey[matchKey(m.Key)]; ok {
				u.ids = append(u.ids, m.LeadID)
			}
			return nil
		})
		if err == nil {
			for _, u := range units {
				// A key the extract did not find is not on the list.
				if err := d.add(ctx, u); err != nil {
					return err
				}
			}
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrDailyQuota) || errors.Is(err, ErrListNotFound) || errors.Is(err, ErrAuth) {
			return err
		}
		d.c.log.Warn("bulk extract failed; looking lead ids up instead", zap.Int64("list", d.listID), zap.Error(err))
		for _, u := range units {
			u.ids = nil
		}
	}
	for start := 0; start < len(units); start += batchMax {
		batch := units[start:min(start+batchMax, len(units))]
		if err := d.lookup(ctx, lookup, batch); err != nil {
			return err
		}
		for _, u := range batch {
			if err := d.add(ctx, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookup finds the lead ids of up to 300 units by their keys. Marketo
// answers 1003 when more than 1,000 leads match; the batch is then split.
func (d *deleter) lookup(ctx context.Context, lookup string, batch []*unit) error {
	var ask []*unit
	for _, u := range batch {
		// filterValues is comma-separated, with no quoting.
		if strings.Contains(u.key, ",") {
			u.reject("", "the "+lookup+" value contains a comma, which Marketo's lookup cannot search for")
			continue
		}
		ask = append(ask, u)
	}
	if len(ask) == 0 {
		return nil
	}
	byKey := make(map[string]*unit, len(ask))
	values := make([]string, 0, len(ask))
	for _, u := range ask {
		byKey[u.key] = u
		values = append(values, u.key)
	}
	found, err := d.c.leadsByFilter(ctx, lookup, values)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == "1003" {
		if len(ask) == 1 {
			ask[0].reject(ae.Code, ae.Message)
			return nil
		}
		half := len(ask) / 2
		if err := d.lookup(ctx, lookup, ask[:half]); err != nil {
			return err
		}
		return d.lookup(ctx, lookup, ask[half:])
	}
	if err != nil {
		return err
	}
	for _, m := range found {
		if u, ok := byKey[matchKey(m.Key)]; ok {
			u.ids = append(u.ids, m.LeadID)
		}
	}
	return nil
}

// leadsByFilter returns every lead whose lookup field holds one of values
// (at most 300), following nextPageToken. A URI past MaxURIBytes goes as
// POST ?_method=GET.
func (c *Client) leadsByFilter(ctx context.Context, field string, values []string) ([]Member, error) {
	fields := "id"
	if !strings.EqualFold(field, "id") {
		fields += "," + field
	}
	var out []Member
	token := ""
	for {
		q := url.Values{
			"filterType":   {field},
			"filterValues": {strings.Join(values, ",")},
			"fields":       {fields},
			"batchSize":    {strconv.Itoa(batchMax)},
		}
		if token != "" {
			q.Set("nextPageToken", token)
		}
		r := &request{method: http.MethodGet, path: "/rest/v1/leads.json", label: "GET /rest/v1/leads.json", query: q, longGet: true}
		env, err := c.call(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("looking leads up by %s: %w", field, err)
		}
		page, err := decodeLeads(env, r.label, field)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if env.NextPageToken == "" || env.NextPageToken == token || len(page) == 0 {
			return out, nil
		}
		token = env.NextPageToken
	}
}
