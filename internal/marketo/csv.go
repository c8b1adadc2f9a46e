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
// the field names in order. A name that is empty, repeats another
// (case-insensitive) or is the lookup field is refused: each column takes
// its value from one field name, and the lookup field's from a lead's Key.
func importHeader(lookupField string, fieldNames []string) ([]string, error) {
	header := make([]string, 0, len(fieldNames)+1)
	header = append(header, lookupField)
	seen := make(map[string]int, len(fieldNames)+1)
	seen[strings.ToLower(lookupField)] = 0
	for i, f := range fieldNames {
		if strings.TrimSpace(f) == "" {
			return nil, fmt.Errorf("field name %d is empty", i+1)
		}
		if j, dup := seen[strings.ToLower(f)]; dup {
			if j == 0 {
				return nil, fmt.Errorf("field name %d, %q, is the lookup field, which a lead's Key carries", i+1, f)
			}
			return nil, fmt.Errorf("field name %d, %q, repeats field name %d", i+1, f, j)
		}
		seen[strings.ToLower(f)] = i + 1
		header = append(header, f)
	}
	return header, nil
}

// importFile is one bulk import file: the indexes of its leads and its size
// in bytes, header included. Its bytes are written by writeImportFile when
// it is sent, so that one file at a time is held in memory.
type importFile struct {
	rows []int
	size int
}

// rowEncoder writes leads as rows of an import file, quoted by encoding/csv
// so that commas, quotes, newlines and leading spaces survive.
type rowEncoder struct {
	buf bytes.Buffer
	w   *csv.Writer
	rec []string
}

func newRowEncoder(columns int) *rowEncoder {
	e := &rowEncoder{rec: make([]string, 0, columns)}
	e.w = csv.NewWriter(&e.buf)
	return e
}

// encode returns the CSV row of the record key, values..., valid until the
// next call.
func (e *rowEncoder) encode(key string, values []string) ([]byte, error) {
	e.rec = append(append(e.rec[:0], key), values...)
	e.buf.Reset()
	if err := e.w.Write(e.rec); err != nil {
		return nil, err
	}
	e.w.Flush()
	if err := e.w.Error(); err != nil {
		return nil, err
	}
	return e.buf.Bytes(), nil
}

// planImportFiles splits the leads of idx, in order, into import files of at
// most maxBytes each (header included), without keeping their bytes.
// tooLarge holds the leads whose row alone does not fit in a file.
func planImportFiles(header []string, leads []Lead, idx []int, maxBytes int) (files []importFile, tooLarge []int, err error) {
	enc := newRowEncoder(len(header))
	head, err := enc.encode(header[0], header[1:])
	if err != nil {
		return nil, nil, fmt.Errorf("writing import header: %w", err)
	}
	headLen := len(head)
	if headLen >= maxBytes {
		return nil, nil, fmt.Errorf("the import header alone (%d bytes) passes the %d-byte file limit", headLen, maxBytes)
	}
	var cur *importFile
	for _, i := range idx {
		l := leads[i]
		row, err := enc.encode(l.Key, l.Values)
		if err != nil {
			return nil, nil, fmt.Errorf("writing import row for %q: %w", l.Key, err)
		}
		if headLen+len(row) > maxBytes {
			tooLarge = append(tooLarge, i)
			continue
		}
		if cur == nil || cur.size+len(row) > maxBytes {
			files = append(files, importFile{size: headLen})
			cur = &files[len(files)-1]
		}
		cur.size += len(row)
		cur.rows = append(cur.rows, i)
	}
	return files, tooLarge, nil
}

// writeImportFile returns the bytes of an import file planned by
// planImportFiles, in one allocation of its exact size.
func writeImportFile(header []string, leads []Lead, f importFile) ([]byte, error) {
	enc := newRowEncoder(len(header))
	data := make([]byte, 0, f.size)
	row, err := enc.encode(header[0], header[1:])
	if err != nil {
		return nil, fmt.Errorf("writing import header: %w", err)
	}
	data = append(data, row...)
	for _, i := range f.rows {
		row, err := enc.encode(leads[i].Key, leads[i].Values)
		if err != nil {
			return nil, fmt.Errorf("writing import row for %q: %w", leads[i].Key, err)
		}
		data = append(data, row...)
	}
	if len(data) != f.size {
		return nil, fmt.Errorf("writing import file: %d bytes written, %d planned", len(data), f.size)
	}
	return data, nil
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
