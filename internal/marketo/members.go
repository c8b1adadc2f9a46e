package marketo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// extractPageSize is how many members of an extract go to fn at a time.
const extractPageSize = 2000

// lookupField returns the lead field that keys a list's members: field,
// trimmed, or "email" when that is empty.
func lookupField(field string) string {
	if f := strings.TrimSpace(field); f != "" {
		return f
	}
	return "email"
}

// ListMembers streams the members of a list, with their lead ids, to fn one
// page at a time. Lists expected to be small (SizeHint below
// ExtractMinRows, or unknown) are paged 300 members a call; large ones are
// read by a bulk extract, a handful of calls whatever their size (see
// [Client.chooseExtract]). A lead without a value in the lookup field comes
// with an empty Key. An error from fn stops the read and is returned as is.
func (c *Client) ListMembers(ctx context.Context, p MembersParams, fn func(ctx context.Context, page []Member) error) error {
	if p.ListID <= 0 {
		return fmt.Errorf("reading list members: list id %d is not positive", p.ListID)
	}
	if fn == nil {
		return errors.New("reading list members: page func is nil")
	}
	lookup := lookupField(p.LookupField)
	call := func(page []Member) error {
		if err := fn(ctx, page); err != nil {
			return &commitError{err}
		}
		return nil
	}
	var err error
	if c.chooseExtract(p.SizeHint) {
		page := make([]Member, 0, extractPageSize)
		err = c.extractMembers(ctx, p.ListID, lookup, func(m Member) error {
			page = append(page, m)
			if len(page) < extractPageSize {
				return nil
			}
			full := page
			page = make([]Member, 0, extractPageSize)
			return call(full)
		})
		if err == nil && len(page) > 0 {
			err = call(page)
		}
	} else {
		err = c.pageMembers(ctx, p.ListID, lookup, call)
	}
	var ce *commitError
	if errors.As(err, &ce) {
		return ce.err
	}
	if err != nil {
		return fmt.Errorf("reading members of list %d: %w", p.ListID, err)
	}
	return nil
}

// chooseExtract decides whether n rows (a list's members, or lead ids to
// learn for removal) are read by a bulk extract rather than 300 a call:
//
//   - Paging or lookups: ⌈n/300⌉ calls, each answered in about a second.
//   - Bulk extract: create, enqueue, status polls (Marketo refreshes the
//     status once a minute; typically 3 or 4 polls) and one download of the
//     whole file: about 7 calls whatever n, but a minute or more of latency.
//
// ⌈n/300⌉ passes 7 calls at n = 2101 (ExtractMinRows), from where the
// extract spends fewer of the instance's calls, which are the scarce
// resource; at 100,000 rows it is 7 calls instead of 334.
func (c *Client) chooseExtract(n int) bool { return n >= c.cfg.ExtractMinRows }

// pageMembers reads a list 300 members a call, following nextPageToken.
func (c *Client) pageMembers(ctx context.Context, listID int64, lookup string, fn func([]Member) error) error {
	fields := "id"
	if !strings.EqualFold(lookup, "id") {
		fields += "," + lookup
	}
	token := ""
	for {
		q := url.Values{"batchSize": {strconv.Itoa(batchMax)}, "fields": {fields}}
		if token != "" {
			q.Set("nextPageToken", token)
		}
		r := &request{
			method:  http.MethodGet,
			path:    "/rest/v1/lists/" + strconv.FormatInt(listID, 10) + "/leads.json",
			label:   "GET /rest/v1/lists/{id}/leads.json",
			query:   q,
			longGet: true,
		}
		env, err := c.call(ctx, r)
		if err != nil {
			return listErr(listID, err)
		}
		leads, err := decodeLeads(env, r.label, lookup)
		if err != nil {
			return err
		}
		if len(leads) > 0 {
			if err := fn(leads); err != nil {
				return err
			}
		}
		if env.NextPageToken == "" || env.NextPageToken == token || len(leads) == 0 {
			return nil
		}
		token = env.NextPageToken
	}
}

// decodeLeads reads a result of lead records into members: the id, and the
// lookup field as the key (a string, number or boolean; null is "").
func decodeLeads(env *envelope, label, lookup string) ([]Member, error) {
	var recs []map[string]json.RawMessage
	if err := decodeResult(env, label, &recs); err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(recs))
	for n, rec := range recs {
		var id flexInt
		if err := json.Unmarshal(rec["id"], &id); err != nil || id <= 0 {
			return nil, fmt.Errorf("decoding %s result: record %d has no valid id", label, n+1)
		}
		m := Member{LeadID: int64(id)}
		raw, ok := rec[lookup]
		if !ok {
			for k, v := range rec {
				if strings.EqualFold(k, lookup) {
					raw = v
					break
				}
			}
		}
		if strings.EqualFold(lookup, "id") {
			raw = rec["id"]
		}
		m.Key = jsonScalar(raw)
		out = append(out, m)
	}
	return out, nil
}

// jsonScalar renders a JSON string, number or boolean as text; anything else
// (null, absent) is "".
func jsonScalar(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return strconv.FormatBool(b)
	}
	return ""
}
