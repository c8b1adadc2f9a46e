package emulator

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// FaultKind is one kind of injected failure.
type FaultKind string

// The faults a call can be answered with. The codes are Marketo's; 502 and
// 503 are HTTP-level answers from the gateway, as a real instance gives
// them in an outage.
const (
	// FaultTimeout answers 604 "Request time-out" (not counted against
	// the limits).
	FaultTimeout FaultKind = "604"
	// FaultUnavailable answers 608 "API Temporarily Unavailable" (not
	// counted).
	FaultUnavailable FaultKind = "608"
	// FaultSystemError answers 611 "System error" (not counted).
	FaultSystemError FaultKind = "611"
	// FaultTransient answers 713 "Transient Error" (counted).
	FaultTransient FaultKind = "713"
	// FaultBadGateway answers HTTP 502 before authentication.
	FaultBadGateway FaultKind = "502"
	// FaultServiceUnavailable answers HTTP 503 before authentication.
	FaultServiceUnavailable FaultKind = "503"
	// FaultSlow serves the call normally after Faults.SlowDelay, holding
	// its concurrency slot meanwhile.
	FaultSlow FaultKind = "slow"
)

// SlowDelayDefault is the delay of a FaultSlow call when Faults.SlowDelay is
// zero.
const SlowDelayDefault = 2 * time.Second

// AllFaultKinds returns every FaultKind, the default set that Faults.Rate
// draws from.
func AllFaultKinds() []FaultKind {
	return []FaultKind{FaultTimeout, FaultUnavailable, FaultSystemError, FaultTransient,
		FaultBadGateway, FaultServiceUnavailable, FaultSlow}
}

// ParseFaultKinds parses a comma-separated list of fault kinds ("604,713,
// slow"); an empty string gives nil (every kind).
func ParseFaultKinds(s string) ([]FaultKind, error) {
	var out []FaultKind
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k := FaultKind(strings.ToLower(f))
		if !slices.Contains(AllFaultKinds(), k) {
			return nil, fmt.Errorf("unknown fault kind %q (want one of 604, 608, 611, 713, 502, 503, slow)", f)
		}
		out = append(out, k)
	}
	return out, nil
}

// Faults configures deterministic injected failures. The zero value injects
// none. Every decision comes from one generator seeded with Seed, drawn in
// the order calls arrive, so a sequential client sees the same faults on
// every run.
type Faults struct {
	// Rate is the fraction (0 to 1) of REST and bulk calls answered with a
	// fault drawn uniformly from Kinds. Identity calls are never faulted.
	Rate float64
	// Seed seeds the generator.
	Seed int64
	// Kinds are the faults Rate draws from; empty means AllFaultKinds().
	Kinds []FaultKind
	// SlowDelay is how long a FaultSlow call waits (default
	// SlowDelayDefault). It is real time.
	SlowDelay time.Duration
	// TokenExpiryRate is the fraction of authenticated calls whose token
	// expires just before the call is served: the call answers 602 and the
	// client must fetch a new token.
	TokenExpiryRate float64
	// ImportFailureRate is the fraction of bulk imports that end Failed
	// (with no row applied) instead of Complete.
	ImportFailureRate float64
}

func (f Faults) slowDelay() time.Duration {
	if f.SlowDelay > 0 {
		return f.SlowDelay
	}
	return SlowDelayDefault
}

// SetFaults replaces the fault configuration and reseeds the generator.
func (e *Emulator) SetFaults(f Faults) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setFaultsLocked(f)
}

// CurrentFaults returns the fault configuration in force.
func (e *Emulator) CurrentFaults() Faults {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.faults
	f.Kinds = slices.Clone(f.Kinds)
	return f
}

func (e *Emulator) setFaultsLocked(f Faults) {
	f.Kinds = slices.Clone(f.Kinds)
	e.faults = f
	e.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x6d61726b65746f))
}

// drawFaultLocked decides whether the current call is faulted, and how.
func (e *Emulator) drawFaultLocked() FaultKind {
	if e.faults.Rate <= 0 || e.rng.Float64() >= e.faults.Rate {
		return ""
	}
	kinds := e.faults.Kinds
	if len(kinds) == 0 {
		kinds = AllFaultKinds()
	}
	return kinds[e.rng.IntN(len(kinds))]
}

// drawTokenExpiryLocked decides whether the current call's token expires.
func (e *Emulator) drawTokenExpiryLocked() bool {
	return e.faults.TokenExpiryRate > 0 && e.rng.Float64() < e.faults.TokenExpiryRate
}

// drawImportFailureLocked decides whether a new bulk import will fail.
func (e *Emulator) drawImportFailureLocked() bool {
	return e.faults.ImportFailureRate > 0 && e.rng.Float64() < e.faults.ImportFailureRate
}

// faultMessage is the message Marketo gives with a fault's code.
func faultMessage(k FaultKind) string {
	switch k {
	case FaultTimeout:
		return "Request time-out"
	case FaultUnavailable:
		return "API Temporarily Unavailable"
	case FaultSystemError:
		return "System error"
	case FaultTransient:
		return "Transient Error"
	}
	return string(k)
}
