package marketo

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// exportJob is a bulk extract job's status.
type exportJob struct {
	ExportID        string  `json:"exportId"`
	Status          string  `json:"status"`
	NumberOfRecords flexInt `json:"numberOfRecords"`
	FileSize        flexInt `json:"fileSize"`
	FileChecksum    string  `json:"fileChecksum"`
	ErrorMsg        string  `json:"errorMsg"`
}

// extractMembers reads every member of a list with its lead id and lookup
// value through a bulk lead extract: create, enqueue, a few status polls and
// one download, whatever the list's size. The file is downloaded to TempDir
// (resuming with Range after a broken transfer) and streamed to fn, so the
// list is never held in memory.
func (c *Client) extractMembers(ctx context.Context, listID int64, lookup string, fn func(Member) error) error {
	fields := []string{"id"}
	if !strings.EqualFold(lookup, "id") {
		fields = append(fields, lookup)
	}
	r, err := jsonRequest(http.MethodPost, "/bulk/v1/leads/export/create.json", "POST /bulk/v1/leads/export/create.json", map[string]any{
		"fields": fields,
		"format": "CSV",
		"filter": map[string]any{"staticListId": listID},
	})
	if err != nil {
		return err
	}
	env, err := c.call(ctx, r)
	if err != nil {
		return fmt.Errorf("creating bulk extract: %w", listErr(listID, err))
	}
	var jobs []exportJob
	if err := decodeResult(env, r.label, &jobs); err != nil {
		return err
	}
	if len(jobs) == 0 || jobs[0].ExportID == "" {
		return errors.New("creating bulk extract: Marketo answered no export id")
	}
	id := jobs[0].ExportID
	// Marketo documents export ids as UUIDs; anything else must not reach a
	// URL path unescaped.
	if strings.ContainsAny(id, "/?#%") {
		return fmt.Errorf("creating bulk extract: export id %q is not a plain identifier", id)
	}
	base := "/bulk/v1/leads/export/" + id
	if _, err := c.call(ctx, &request{method: http.MethodPost, path: base + "/enqueue.json", label: "POST /bulk/v1/leads/export/{id}/enqueue.json"}); err != nil {
		return fmt.Errorf("enqueuing bulk extract %s: %w", id, err)
	}
	job, err := c.pollExtract(ctx, base, id)
	if err != nil {
		return err
	}
	path, err := c.downloadExtract(ctx, base, id, job)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening bulk extract %s: %w", id, err)
	}
	defer f.Close()
	er, err := newExtractReader(bufio.NewReaderSize(f, 256<<10), fields[len(fields)-1])
	if err != nil {
		return fmt.Errorf("reading bulk extract %s: %w", id, err)
	}
	for {
		m, err := er.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading bulk extract %s: %w", id, err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
}

func (c *Client) pollExtract(ctx context.Context, base, id string) (exportJob, error) {
	r := &request{method: http.MethodGet, path: base + "/status.json", label: "GET /bulk/v1/leads/export/{id}/status.json", retry613: true}
	wait := c.cfg.ExtractPollInitial
	for {
		if err := sleepCtx(ctx, wait); err != nil {
			return exportJob{}, err
		}
		wait = min(wait*3/2, c.cfg.ExtractPollMax)
		env, err := c.call(ctx, r)
		if err != nil {
			return exportJob{}, fmt.Errorf("reading bulk extract %s status: %w", id, err)
		}
		var jobs []exportJob
		if err := decodeResult(env, r.label, &jobs); err != nil {
			return exportJob{}, err
		}
		if len(jobs) == 0 {
			return exportJob{}, fmt.Errorf("reading bulk extract %s status: empty result", id)
		}
		switch jobs[0].Status {
		case "Completed":
			return jobs[0], nil
		case "Failed", "Cancelled":
			return exportJob{}, fmt.Errorf("bulk extract %s ended %s: %s", id, jobs[0].Status, cmpOr(jobs[0].ErrorMsg, "no message"))
		}
	}
}

// downloadExtract fetches the extract file into a temporary file and checks
// its size and checksum when Marketo gave them.
func (c *Client) downloadExtract(ctx context.Context, base, id string, job exportJob) (string, error) {
	f, err := os.CreateTemp(c.cfg.TempDir, "listsync-extract-*.csv")
	if err != nil {
		return "", fmt.Errorf("creating a file for bulk extract %s: %w", id, err)
	}
	path := f.Name()
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(path)
		}
	}()
	var written int64
	r := &request{
		method: http.MethodGet,
		path:   base + "/file.json",
		label:  "GET /bulk/v1/leads/export/{id}/file.json",
		header: func() http.Header {
			if written == 0 {
				return nil
			}
			return http.Header{"Range": {"bytes=" + strconv.FormatInt(written, 10) + "-"}}
		},
		download: func(resp *http.Response) error {
			if resp.StatusCode != http.StatusPartialContent {
				// A full body: start over.
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					return err
				}
				if err := f.Truncate(0); err != nil {
					return err
				}
				written = 0
			}
			n, err := io.Copy(f, resp.Body)
			written += n
			return err
		},
	}
	for try := 0; ; try++ {
		if _, err := c.call(ctx, r); err != nil {
			return "", fmt.Errorf("downloading bulk extract %s: %w", id, err)
		}
		verr := verifyFile(f, written, int64(job.FileSize), job.FileChecksum)
		if verr == nil {
			break
		}
		if try >= 1 {
			return "", fmt.Errorf("downloading bulk extract %s: %w", id, verr)
		}
		c.log.Warn("bulk extract download did not verify; downloading it again", zap.String("export", id), zap.Error(verr))
		written = 0
		if err := f.Truncate(0); err != nil {
			return "", fmt.Errorf("downloading bulk extract %s: %w", id, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", fmt.Errorf("downloading bulk extract %s: %w", id, err)
		}
	}
	ok = true
	return path, nil
}

// verifyFile checks a downloaded file against the size and the
// "sha256:<hex>" checksum of the extract's status, when present.
func verifyFile(f *os.File, written, size int64, checksum string) error {
	if size > 0 && written != size {
		return fmt.Errorf("got %d bytes, Marketo announced %d", written, size)
	}
	algo, want, found := strings.Cut(checksum, ":")
	if !found || !strings.EqualFold(algo, "sha256") {
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, want) {
		return fmt.Errorf("checksum sha256:%s, Marketo announced %s", got, checksum)
	}
	return nil
}
