package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/listsync/listsync/internal/marketo/emulator"
)

// Emulator credentials written into every benchmark config.
const (
	emuClientID     = "bench"
	emuClientSecret = "bench-secret"
	emuFolder       = "Audiences"
)

// Emu is a Marketo emulator served on a loopback port of the harness.
type Emu struct {
	*emulator.Emulator
	URL    string
	srv    *http.Server
	Folder int64
}

// StartEmu serves a new emulator with cfg on 127.0.0.1 and creates the
// benchmark's folder.
func StartEmu(cfg emulator.Config) (*Emu, error) {
	cfg.ClientID, cfg.ClientSecret = emuClientID, emuClientSecret
	em := emulator.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the emulator: %w", err)
	}
	srv := &http.Server{Handler: em, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	e := &Emu{Emulator: em, URL: "http://" + ln.Addr().String(), srv: srv}
	e.Folder = em.CreateFolder(emuFolder)
	return e, nil
}

// Close stops the server and the emulator.
func (e *Emu) Close() {
	_ = e.Emulator.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = e.srv.Close()
	}
}

// Calls is the API calls the emulator counted between two snapshots.
type Calls struct {
	Total      int64
	Rejected   map[string]int64
	ByEndpoint map[string]int64
}

// Get returns the calls to one endpoint.
func (c Calls) Get(endpoint string) int64 { return c.ByEndpoint[endpoint] }

// Rejections606615 returns the rate and concurrency rejections.
func (c Calls) Rejections606615() int64 { return c.Rejected["606"] + c.Rejected["615"] }

// Since returns the calls counted after before.
func Since(before, after emulator.Stats) Calls {
	c := Calls{Total: after.CallsTotal - before.CallsTotal, Rejected: map[string]int64{}, ByEndpoint: map[string]int64{}}
	for k, v := range after.Rejected {
		if d := v - before.Rejected[k]; d != 0 {
			c.Rejected[k] = d
		}
	}
	for k, v := range after.Endpoints {
		if d := v - before.Endpoints[k]; d != 0 {
			c.ByEndpoint[k] = d
		}
	}
	return c
}

// endpointSummary renders the calls by endpoint, largest first.
func (c Calls) endpointSummary() string {
	keys := make([]string, 0, len(c.ByEndpoint))
	for k := range maps.Keys(c.ByEndpoint) {
		keys = append(keys, k)
	}
	sortByCountDesc(keys, c.ByEndpoint)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s ×%d", shortEndpoint(k), c.ByEndpoint[k])
	}
	return s
}

// sortByCountDesc sorts keys by their count, largest first, then by name.
func sortByCountDesc(keys []string, counts map[string]int64) {
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

// shortEndpoint shortens an endpoint label for a table:
// "DELETE /rest/v1/lists/{id}/leads.json" becomes "DELETE lists/{id}/leads".
func shortEndpoint(e string) string {
	for _, p := range []string{"/rest/asset/v1/", "/rest/v1/", "/bulk/v1/"} {
		if i := strings.Index(e, p); i >= 0 {
			prefix := ""
			if p == "/bulk/v1/" {
				prefix = "bulk "
			}
			e = e[:i] + prefix + e[i+len(p):]
			break
		}
	}
	return strings.TrimSuffix(e, ".json")
}
