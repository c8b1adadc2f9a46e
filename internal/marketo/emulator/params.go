package emulator

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// splitList flattens parameter values that may be repeated, comma-joined or
// both ("id=1&id=2", "id=1,2") into trimmed, non-empty items.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// parseIDs parses lead IDs from id parameters (repeated or comma-joined) and
// from a JSON body {"input":[{"id":1},...]} (IDs as numbers or strings).
func parseIDs(params []string, body []byte) ([]int64, error) {
	var ids []int64
	for _, s := range splitList(params) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return nil, apiMsg(fmt.Sprintf("Invalid value '%s'. Required of type 'integer'", s))
		}
		ids = append(ids, n)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ids, nil
	}
	var req struct {
		Input []struct {
			ID json.RawMessage `json:"id"`
		} `json:"input"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errInvalidJSON
	}
	for _, in := range req.Input {
		s, ok := rawString(in.ID)
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if !ok || err != nil || n <= 0 {
			return nil, apiMsg(fmt.Sprintf("Invalid value '%s'. Required of type 'integer'", in.ID))
		}
		ids = append(ids, n)
	}
	return ids, nil
}

// errInvalidJSON reports a body that is not the JSON a call expects.
const errInvalidJSON = apiMsg("Invalid JSON")

// apiMsg is an error whose text is a Marketo-style message, sent to the
// client as it is.
type apiMsg string

// Error returns the message.
func (m apiMsg) Error() string { return string(m) }

// folderRef is a folder parameter: {"id":13,"type":"Folder"} or a bare id.
type folderRef struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

// parseFolderParam parses a folder or root parameter given as a JSON object
// ({"id":13,"type":"Folder"}, the id a number or a string) or as a bare ID.
// The type defaults to "Folder" and is normalised to "Folder" or "Program".
func parseFolderParam(s string) (folderRef, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return folderRef{}, apiMsg("folder cannot be blank")
	}
	ref := folderRef{Type: "Folder"}
	if s[0] == '{' {
		var raw struct {
			ID   json.RawMessage `json:"id"`
			Type string          `json:"type"`
		}
		if err := json.Unmarshal([]byte(s), &raw); err != nil {
			return folderRef{}, apiMsg(fmt.Sprintf("Invalid folder '%s': %v", s, err))
		}
		v, _ := rawString(raw.ID)
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n <= 0 {
			return folderRef{}, apiMsg(fmt.Sprintf("Invalid folder '%s': id must be a positive integer", s))
		}
		ref.ID = n
		if raw.Type != "" {
			ref.Type = raw.Type
		}
	} else {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return folderRef{}, apiMsg(fmt.Sprintf("Invalid folder '%s': want a folder id or {\"id\":N,\"type\":\"Folder\"}", s))
		}
		ref.ID = n
	}
	switch strings.ToLower(ref.Type) {
	case "folder":
		ref.Type = "Folder"
	case "program":
		ref.Type = "Program"
	default:
		return folderRef{}, apiMsg(fmt.Sprintf("Invalid folder type '%s': want Folder or Program", ref.Type))
	}
	return ref, nil
}

// pageTokenEncoding encodes paging tokens the way Marketo's look: base32
// with padding.
func pageTokenEncoding() *base32.Encoding { return base32.StdEncoding }

// encodePageToken returns an opaque token that resumes a paged call of
// the given kind after the ID last.
func encodePageToken(kind string, last int64) string {
	return pageTokenEncoding().EncodeToString([]byte(kind + ":" + strconv.FormatInt(last, 10)))
}

// decodePageToken reverses encodePageToken for a token of the given kind.
func decodePageToken(kind, tok string) (int64, error) {
	b, err := pageTokenEncoding().DecodeString(tok)
	if err != nil {
		return 0, apiMsg(fmt.Sprintf("Invalid nextPageToken '%s'", tok))
	}
	k, v, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(v, 10, 64)
	if !ok || k != kind || err != nil || n < 0 {
		return 0, apiMsg(fmt.Sprintf("Invalid nextPageToken '%s'", tok))
	}
	return n, nil
}

// paging parses batchSize (default and maximum 300) and nextPageToken.
func (c *call) paging(kind string) (size int, after int64, bad *response) {
	size = MaxBatch
	if s := c.param("batchSize"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxBatch {
			r := c.fail("1003", fmt.Sprintf("Invalid data: batchSize '%s' must be between 1 and %d", s, MaxBatch))
			return 0, 0, &r
		}
		size = n
	}
	if t := c.param("nextPageToken"); t != "" {
		n, err := decodePageToken(kind, t)
		if err != nil {
			r := c.fail("1003", err.Error())
			return 0, 0, &r
		}
		after = n
	}
	return size, after, nil
}
