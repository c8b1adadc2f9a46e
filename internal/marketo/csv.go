package marketo

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// importHeader returns the header of an import file: the lookup field, then
// the other field names in order, without repeats (case-insensitive).
func importHeader(lookupField string, fieldNames []string) ([]string, error) {
	header := []string{lookupField}
	seen := map[string]bool{strings.ToLower(lookupField): true}
	for i, f := range fieldNames {
		if strings.TrimSpace(f) == "" {
			return nil, fmt.Errorf("field name %d is empty", i+1)
		}
		if seen[strings.ToLower(f)] {
			continue
		}
		seen[strings.ToLower(f)] = true
		header = append(header, f)
	}
	return header, nil
}

// importChunk is one bulk import file and the indexes of the leads in it.
type importChunk struct {
	data []byte
	rows []int
}

// buildImportChunks writes leads as CSV files of at most maxBytes each
// (header included), quoted by encoding/csv so that commas, quotes, newlines
// and leading spaces survive. tooLarge holds the leads whose row alone does
// not fit in a file.
func buildImportChunks(header []string, leads []Lead, idx []int, maxBytes int) (chunks []importChunk, tooLarge []int, err error) {
	var headBuf bytes.Buffer
	hw := csv.NewWriter(&headBuf)
	if err := hw.Write(header); err != nil {
		return nil, nil, fmt.Errorf("writing import header: %w", err)
	}
	hw.Flush()
	if headBuf.Len() >= maxBytes {
		return nil, nil, fmt.Errorf("the import header alone (%d bytes) passes the %d-byte file limit", headBuf.Len(), maxBytes)
	}

	var row bytes.Buffer
	rw := csv.NewWriter(&row)
	rec := make([]string, len(header))
	var cur *importChunk
	for _, i := range idx {
		l := leads[i]
		rec[0] = l.Key
		for j, f := range header[1:] {
			rec[j+1] = l.Fields[f]
		}
		row.Reset()
		if err := rw.Write(rec); err != nil {
			return nil, nil, fmt.Errorf("writing import row for %q: %w", l.Key, err)
		}
		rw.Flush()
		if err := rw.Error(); err != nil {
			return nil, nil, fmt.Errorf("writing import row for %q: %w", l.Key, err)
		}
		if headBuf.Len()+row.Len() > maxBytes {
			tooLarge = append(tooLarge, i)
			continue
		}
		if cur == nil || len(cur.data)+row.Len() > maxBytes {
			chunks = append(chunks, importChunk{data: append(make([]byte, 0, min(maxBytes, 1<<20)), headBuf.Bytes()...)})
			cur = &chunks[len(chunks)-1]
		}
		cur.data = append(cur.data, row.Bytes()...)
		cur.rows = append(cur.rows, i)
	}
	return chunks, tooLarge, nil
}

// matchKey is how lookup values are compared when Marketo echoes them back:
// Marketo matches lookup values without regard to case or surrounding space.
func matchKey(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// parseReasonCSV reads a failures.json or warnings.json file: the import's
// rows plus a reason column (named reasonColumn, else the last column). It
// returns the reason of each row by lookup value (matchKey); a value seen on
// several rows keeps its first reason.
func parseReasonCSV(r io.Reader, lookupField, reasonColumn string) (map[string]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	keyCol, reasonCol := -1, -1
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		switch {
		case strings.EqualFold(h, lookupField) && keyCol < 0:
			keyCol = i
		case strings.EqualFold(h, reasonColumn):
			reasonCol = i
		}
	}
	if keyCol < 0 {
		return nil, fmt.Errorf("header %q has no %q column", strings.Join(header, ","), lookupField)
	}
	if reasonCol < 0 {
		reasonCol = len(header) - 1
	}
	out := make(map[string]string)
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading row %d: %w", line, err)
		}
		if keyCol >= len(rec) {
			continue
		}
		reason := ""
		if reasonCol < len(rec) {
			reason = strings.TrimSpace(rec[reasonCol])
		}
		if reason == "" {
			reason = "no reason given"
		}
		k := matchKey(rec[keyCol])
		if _, dup := out[k]; !dup {
			out[k] = reason
		}
	}
}

// extractReader reads a bulk extract file of lead ids and lookup values.
type extractReader struct {
	cr     *csv.Reader
	idCol  int
	keyCol int
	line   int
}

func newExtractReader(r io.Reader, lookupField string) (*extractReader, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return &extractReader{cr: cr, idCol: -1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading extract header: %w", err)
	}
	er := &extractReader{cr: cr, idCol: -1, keyCol: -1, line: 1}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if strings.EqualFold(h, "id") && er.idCol < 0 {
			er.idCol = i
		}
		if strings.EqualFold(h, lookupField) && er.keyCol < 0 {
			er.keyCol = i
		}
	}
	if er.idCol < 0 || er.keyCol < 0 {
		return nil, fmt.Errorf("extract header %q lacks the id or %q column", strings.Join(header, ","), lookupField)
	}
	return er, nil
}

// next returns the next member, or io.EOF.
func (er *extractReader) next() (Member, error) {
	if er.idCol < 0 {
		return Member{}, io.EOF
	}
	for {
		rec, err := er.cr.Read()
		er.line++
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Member{}, io.EOF
			}
			return Member{}, fmt.Errorf("reading extract row %d: %w", er.line, err)
		}
		if len(rec) == 1 && rec[0] == "" {
			continue
		}
		if er.idCol >= len(rec) || er.keyCol >= len(rec) {
			return Member{}, fmt.Errorf("extract row %d has %d columns", er.line, len(rec))
		}
		id, err := strconv.ParseInt(strings.TrimSpace(rec[er.idCol]), 10, 64)
		if err != nil || id <= 0 {
			return Member{}, fmt.Errorf("extract row %d: lead id %q is not a positive integer", er.line, rec[er.idCol])
		}
		return Member{Key: rec[er.keyCol], LeadID: id}, nil
	}
}
