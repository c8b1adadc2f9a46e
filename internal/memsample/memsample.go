// Package memsample measures the peak heap of a stretch of code, for the
// memory benchmarks: a goroutine samples the Go runtime's heap statistics
// at a fixed interval until it is stopped.
package memsample

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

// Peaks are the highest heap figures seen, in bytes.
type Peaks struct {
	// Inuse is the heap in use: live data plus garbage not yet collected,
	// what the process's RSS follows.
	Inuse uint64
	// Live is the live heap as marked by the last garbage collection.
	Live uint64
}

// Start samples the heap every interval until the returned func is called,
// which stops the sampling and returns the peaks.
func Start(interval time.Duration) (stop func() Peaks) {
	var (
		mu    sync.Mutex
		peaks Peaks
	)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		var ms runtime.MemStats
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			runtime.ReadMemStats(&ms)
			metrics.Read(sample)
			mu.Lock()
			peaks.Inuse = max(peaks.Inuse, ms.HeapInuse)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				peaks.Live = max(peaks.Live, sample[0].Value.Uint64())
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() Peaks {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peaks
	}
}

// HeapInuse returns the heap in use now, in bytes.
func HeapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
