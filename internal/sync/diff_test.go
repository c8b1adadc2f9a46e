package sync

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/state"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// csvRows is a warehouse.Rows over a CSV file's records, in which the value
// \N stands for NULL.
type csvRows struct {
	cols []string
	recs [][]string
	i    int
	vals []any
}

func (r *csvRows) Columns() []string { return r.cols }
func (r *csvRows) Next() bool {
	if r.i >= len(r.recs) {
		return false
	}
	rec := r.recs[r.i]
	r.i++
	r.vals = r.vals[:0]
	for _, v := range rec {
		if v == `\N` {
			r.vals = append(r.vals, nil)
		} else {
			r.vals = append(r.vals, v)
		}
	}
	return true
}
func (r *csvRows) Values() []any { return r.vals }
func (r *csvRows) Err() error    { return nil }
func (r *csvRows) Close() error  { return nil }

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	require.NoError(t, err, path)
	return recs
}

// diffCase is a golden case's case.json.
type diffCase struct {
	LookupField string            `json:"lookup_field"`
	Fields      map[string]string `json:"fields"`
	Mode        string            `json:"mode"`
	Now         time.Time         `json:"now"`
}

// diffGolden is a golden case's want.json.
type diffGolden struct {
	Model    modelStats   `json:"model"`
	Stats    diffStats    `json:"stats"`
	Adds     []goldenLead `json:"adds"`
	Updates  []goldenLead `json:"updates"`
	Removes  []goldenLead `json:"removes"`
	Deferred []string     `json:"deferred"`
	Forget   []string     `json:"forget"`
	// Rehash lists the members whose legacy hash a run rewrites.
	Rehash  []string          `json:"rehash,omitempty"`
	Columns map[string]string `json:"columns,omitempty"`
}

type goldenLead struct {
	Key    string            `json:"key"`
	LeadID int64             `json:"lead_id,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}

// collectSink gathers the diff in memory.
type collectSink struct {
	names []string
	g     *diffGolden
}

func (c *collectSink) emit(r *record) error {
	l := goldenLead{Key: r.key, LeadID: r.leadID}
	if len(r.values) > 0 {
		l.Fields = map[string]string{}
		for i, n := range c.names {
			l.Fields[n] = r.values[i]
		}
	}
	switch r.kind {
	case kindAdd:
		c.g.Adds = append(c.g.Adds, l)
	case kindUpdate:
		c.g.Updates = append(c.g.Updates, l)
	case kindRemove:
		c.g.Removes = append(c.g.Removes, l)
	}
	return nil
}
func (c *collectSink) deferred(key string, op state.Op) {
	c.g.Deferred = append(c.g.Deferred, string(op)+" "+key)
}
func (c *collectSink) forget(key string) error { c.g.Forget = append(c.g.Forget, key); return nil }
func (c *collectSink) rehash(r *record) error {
	if storedIs(r.hash.stored(), hashFields(c.names, r.values)) {
		c.g.Rehash = append(c.g.Rehash, r.key)
		return nil
	}
	return fmt.Errorf("rehash of %s carries a hash that is not its fields'", r.key)
}

// runDiffCase runs the staging and the diff of one golden case with the
// given sort memory.
func runDiffCase(t *testing.T, dir string, sortMemory int) diffGolden {
	t.Helper()
	c := diffCase{LookupField: "email", Mode: "mirror", Now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if b, err := os.ReadFile(filepath.Join(dir, "case.json")); err == nil {
		require.NoError(t, json.Unmarshal(b, &c))
	}
	model := readCSV(t, filepath.Join(dir, "model.csv"))
	require.NotEmpty(t, model, "model.csv needs at least a header")
	rows := &csvRows{cols: model[0], recs: model[1:]}
	p, err := planColumns("model.sql", rows.cols, c.LookupField, c.Fields)
	require.NoError(t, err)

	// Ledger: key,lead_id,fields where fields is name=value;… (hashed like
	// the model's; after "legacy:", with the hash of ledgers written before
	// fieldsHashV2) or ? for an unknown hash.
	var ledger []state.Member
	for _, rec := range readCSV(t, filepath.Join(dir, "ledger.csv"))[1:] {
		id, err := strconv.ParseInt(rec[1], 10, 64)
		require.NoError(t, err)
		m := state.Member{Key: rec[0], LeadID: id}
		if rec[2] != "?" {
			kvs, legacy := strings.CutPrefix(rec[2], "legacy:")
			vals := map[string]string{}
			for kv := range strings.SplitSeq(kvs, ";") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					vals[k] = v
				}
			}
			values := make([]string, len(p.fieldNames))
			for i, n := range p.fieldNames {
				values[i] = vals[n]
			}
			m.FieldsHash = hashFields(p.fieldNames, values).stored()
			if legacy {
				m.FieldsHash = legacyFieldsHash(p.fieldNames, values)
			}
		}
		ledger = append(ledger, m)
	}
	slices.SortFunc(ledger, func(a, b state.Member) int {
		fa, fb := state.Fingerprint(a.Key), state.Fingerprint(b.Key)
		return bytes.Compare(fa[:], fb[:])
	})
	scan := func(fn func(*state.DigestEntry) error) error {
		for _, m := range ledger {
			e := state.DigestEntry{FP: state.Fingerprint(m.Key), Key: []byte(m.Key), LeadID: m.LeadID, FieldsHash: m.FieldsHash}
			if err := fn(&e); err != nil {
				return err
			}
		}
		return nil
	}
	rs := &stagedRows{sorter: newEntrySorter(t.TempDir(), sortMemory)}
	rs.arena, err = newArena(t.TempDir(), "rejects-*")
	require.NoError(t, err)
	defer rs.cleanup()
	if recs := readCSV(t, filepath.Join(dir, "rejects.csv")); len(recs) > 1 {
		for _, rec := range recs[1:] {
			next, err := time.Parse(time.RFC3339, rec[2])
			require.NoError(t, err)
			off, err := rs.arena.add(rec[0], rec[1], strconv.FormatInt(next.UnixMicro(), 10))
			require.NoError(t, err)
			e := entry{off: off}
			e.hi, e.lo = entryFP(state.Fingerprint(rec[0]))
			require.NoError(t, rs.sorter.add(e))
		}
	}
	require.NoError(t, rs.arena.flush())
	rit, err := rs.sorter.finish()
	require.NoError(t, err)
	defer rit.close()

	s, err := newStagedRows(t.TempDir(), sortMemory)
	require.NoError(t, err)
	defer s.cleanup()
	var g diffGolden
	g.Model, err = stageModel(context.Background(), rows, p, newKeyRule(c.LookupField), s)
	require.NoError(t, err)
	it, err := s.sorter.finish()
	require.NoError(t, err)
	defer it.close()
	sink := &collectSink{names: p.fieldNames, g: &g}
	g.Stats, err = diff(context.Background(), diffInput{model: it, modelRows: s.arena.f, rejects: rit, rejectRows: rs.arena.f}, scan,
		diffParams{mirror: c.Mode != "add_only", hasFields: len(c.Fields) > 0, fieldNames: p.fieldNames, now: c.Now}, sink)
	require.NoError(t, err)
	// The diff comes in fingerprint order; the golden files list it in key
	// order.
	byKey := func(a, b goldenLead) int { return strings.Compare(a.Key, b.Key) }
	slices.SortFunc(g.Adds, byKey)
	slices.SortFunc(g.Updates, byKey)
	slices.SortFunc(g.Removes, byKey)
	slices.SortFunc(g.Deferred, func(a, b string) int {
		_, ka, _ := strings.Cut(a, " ")
		_, kb, _ := strings.Cut(b, " ")
		return strings.Compare(ka, kb)
	})
	slices.Sort(g.Forget)
	slices.Sort(g.Rehash)
	return g
}

func TestDiffGolden(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob("testdata/diff/*")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			got := runDiffCase(t, dir, 64<<20)
			// A tiny sort budget spills every few rows: the external
			// merge must give the very same diff.
			spilled := runDiffCase(t, dir, 300)
			require.Empty(t, cmp.Diff(got, spilled), "in-memory vs spilled sort (-mem +spilled)")

			wantPath := filepath.Join(dir, "want.json")
			if *update {
				b, err := json.MarshalIndent(got, "", "  ")
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(wantPath, append(b, '\n'), 0o644))
			}
			b, err := os.ReadFile(wantPath)
			require.NoError(t, err, "run with -update to create it")
			var want diffGolden
			require.NoError(t, json.Unmarshal(b, &want))
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("diff of %s (-want +got):\n%s", dir, d)
			}
		})
	}
}

// TestFieldsHashFormatsArePinned pins both forms a ledger may hold: a
// change to either would make every lead's fields look changed (and be
// re-sent) after an upgrade. The legacy value is the first 16 bytes of
// `printf '\x09firstName\x03Ada\x08lastName\x08Lovelace' | sha256sum`.
func TestFieldsHashFormatsArePinned(t *testing.T) {
	t.Parallel()
	names, values := []string{"firstName", "lastName"}, []string{"Ada", "Lovelace"}
	require.Equal(t, "024f521b1227daf379420d56c9d12dce26", hex.EncodeToString(hashFields(names, values).stored()))
	require.Equal(t, "6adbe557db549a52cac4b170c1e3265c", hex.EncodeToString(legacyFieldsHash(names, values)))
	require.True(t, isLegacyHash(legacyFieldsHash(names, values)))
	require.False(t, isLegacyHash(hashFields(names, values).stored()))
	require.False(t, storedIs(legacyFieldsHash(names, values), hashFields(names, values)))
	require.False(t, storedIs([]byte(state.PendingHash), hashFields(names, values)))
}

func TestHashFieldsDistinguishesNamesAndValues(t *testing.T) {
	t.Parallel()
	a := hashFields([]string{"a", "b"}, []string{"1", "2"})
	require.Equal(t, a, hashFields([]string{"a", "b"}, []string{"1", "2"}))
	for _, other := range []fieldsHash{
		hashFields([]string{"a", "b"}, []string{"1", "3"}),
		hashFields([]string{"a", "c"}, []string{"1", "2"}),
		hashFields([]string{"a", "b"}, []string{"12", ""}),
		hashFields([]string{"ab"}, []string{"12"}),
		hashFields(nil, nil),
	} {
		require.NotEqual(t, hex.EncodeToString(a[:]), hex.EncodeToString(other[:]))
	}
}
