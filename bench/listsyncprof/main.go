// Command listsyncprof is cmd/listsync with profiling, for the benchmark
// harness: the flags before the listsync command name the profiles, the
// rest is listsync's command line, run by the same internal/cli.Run.
//
//	listsyncprof --cpuprofile cpu.prof --memprofile mem.prof --peakheap peak.prof --trace trace.out plan --config F SYNC
//
// --memprofile is written at exit (alloc_space shows allocation churn);
// --peakheap is a heap profile taken when the live heap was largest, which
// shows what holds the memory behind the peak RSS.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "time/tzdata"

	"github.com/listsync/listsync/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx)
	stop()
	os.Exit(code)
}

func run(ctx context.Context) int {
	fs := flag.NewFlagSet("listsyncprof", flag.ContinueOnError)
	cpu := fs.String("cpuprofile", "", "write a CPU profile to this file")
	mem := fs.String("memprofile", "", "write a heap profile to this file at exit")
	peak := fs.String("peakheap", "", "write the heap profile taken at the largest live heap to this file")
	peakRSS := fs.String("peakrss", "", "write what the process was doing at its largest RSS (memory statistics and goroutine stacks) to this file")
	traceOut := fs.String("trace", "", "write a runtime execution trace to this file (go tool trace)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			fmt.Fprintln(os.Stderr, "listsyncprof:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "listsyncprof:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	if *traceOut != "" {
		f, err := os.Create(*traceOut)
		if err != nil {
			fmt.Fprintln(os.Stderr, "listsyncprof:", err)
			return 2
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			fmt.Fprintln(os.Stderr, "listsyncprof:", err)
			return 2
		}
		defer trace.Stop()
	}
	var done chan struct{}
	var peakProf, peakRSSDump []byte
	finished := make(chan struct{})
	if *peak != "" || *peakRSS != "" {
		done = make(chan struct{})
		go func() {
			defer close(finished)
			var maxInuse uint64
			var maxRSS int64
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			start := time.Now()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if *peak != "" && ms.HeapInuse > maxInuse+maxInuse/10 {
					maxInuse = ms.HeapInuse
					var buf bytes.Buffer
					if pprof.Lookup("heap").WriteTo(&buf, 0) == nil {
						peakProf = buf.Bytes()
					}
				}
				if rss := readRSS(); *peakRSS != "" && rss > maxRSS+maxRSS/20 {
					maxRSS = rss
					var buf bytes.Buffer
					fmt.Fprintf(&buf, "at %.2fs: RSS %d MB; Go: Sys %d MB, HeapSys %d MB, HeapInuse %d MB, HeapAlloc %d MB, StackSys %d MB, NumGC %d\n\n",
						time.Since(start).Seconds(), rss>>20, ms.Sys>>20, ms.HeapSys>>20, ms.HeapInuse>>20, ms.HeapAlloc>>20, ms.StackSys>>20, ms.NumGC)
					_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
					peakRSSDump = buf.Bytes()
				}
			}
		}()
	}
	code := cli.Run(ctx, fs.Args(), os.Stdout, os.Stderr, cli.WithLookupEnv(os.LookupEnv), cli.WithTempDir(os.TempDir()))
	if done != nil {
		close(done)
		<-finished
		for _, f := range []struct {
			path string
			data []byte
		}{{*peak, peakProf}, {*peakRSS, peakRSSDump}} {
			if f.path == "" {
				continue
			}
			if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "listsyncprof:", err)
			}
		}
	}
	if *mem != "" {
		runtime.GC()
		f, err := os.Create(*mem)
		if err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	return code
}

// readRSS returns the process's resident set size in bytes, from
// /proc/self/statm (0 where it cannot be read).
func readRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
