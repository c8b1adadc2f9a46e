package memsample_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/listsync/listsync/internal/memsample"
)

// sink keeps the allocation below reachable while it is sampled.
var sink []byte

func TestStartSeesAPeakThatIsGone(t *testing.T) {
	runtime.GC()
	base := memsample.HeapInuse()
	stop := memsample.Start(time.Millisecond)
	sink = make([]byte, 64<<20)
	for i := range sink {
		sink[i] = byte(i) // touch it, so that it is in use
	}
	runtime.GC() // marks it live
	time.Sleep(20 * time.Millisecond)
	sink = nil
	runtime.GC()
	peaks := stop()
	if got := peaks.Inuse - min(peaks.Inuse, base); got < 60<<20 {
		t.Errorf("peak heap in use %d MB above the start, want at least 60", got>>20)
	}
	if peaks.Live < 60<<20 {
		t.Errorf("peak live heap %d MB, want at least 60", peaks.Live>>20)
	}
	if now := memsample.HeapInuse(); now-min(now, base) > 32<<20 {
		t.Errorf("the 64 MB were not freed: %d MB above the start", (now-base)>>20)
	}
}
