// Command listsyncprof is cmd/listsync with profiling, for the benchmark
// harness: the flags before the listsync command name the profiles, the
// rest is listsync's command line, run by the same internal/cli.Run.
//
//	listsyncprof --cpuprofile cpu.prof --memprofile mem.prof --peakheap peak.prof plan --config F SYNC
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
	var done chan struct{}
	var peakProf []byte
	finished := make(chan struct{})
	if *peak != "" {
		done = make(chan struct{})
		go func() {
			defer close(finished)
			var maxInuse uint64
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > maxInuse+maxInuse/10 {
					maxInuse = ms.HeapInuse
					var buf bytes.Buffer
					if pprof.Lookup("heap").WriteTo(&buf, 0) == nil {
						peakProf = buf.Bytes()
					}
				}
			}
		}()
	}
	code := cli.Run(ctx, fs.Args(), os.Stdout, os.Stderr, cli.WithLookupEnv(os.LookupEnv), cli.WithTempDir(os.TempDir()))
	if done != nil {
		close(done)
		<-finished
		if err := os.WriteFile(*peak, peakProf, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "listsyncprof:", err)
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
