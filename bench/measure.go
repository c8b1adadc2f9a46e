package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Measurement is one run of a child process.
type Measurement struct {
	// Wall is the whole process's wall time, from start to exit.
	Wall time.Duration
	// MaxRSS is the child's peak resident set size in bytes (rusage
	// ru_maxrss, which Linux reports in KiB).
	MaxRSS int64
	// User and Sys are the child's CPU times.
	User, Sys time.Duration
	// MachineBusy is the CPU time every process of the machine spent while
	// the child ran (from /proc/stat; 0 where it cannot be read): the
	// child's own, and that of the servers it talks to (Postgres), and of
	// anything else running.
	MachineBusy time.Duration
	Stdout      []byte
	Stderr      []byte
}

// Cmd is a child process to measure.
type Cmd struct {
	Path string
	Args []string
	Dir  string
	Env  []string
	// Stdout, when set, receives the child's standard output instead of a
	// buffer (for large outputs such as a profile).
	Stdout io.Writer
}

// String returns the command line as a shell would take it.
func (c Cmd) String() string {
	parts := make([]string, 0, len(c.Args)+1)
	parts = append(parts, shellQuote(c.Path))
	for _, a := range c.Args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ExitError is a child that exited unsuccessfully.
type ExitError struct {
	Cmd    string
	Err    error
	Stderr string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > 2000 {
		msg = "…" + msg[len(msg)-2000:]
	}
	return fmt.Sprintf("running %s: %v: %s", e.Cmd, e.Err, msg)
}

func (e *ExitError) Unwrap() error { return e.Err }

// timeBin is GNU time, which measures a child's peak RSS correctly.
const timeBin = "/usr/bin/time"

// Measure runs c to completion and returns its wall time, peak RSS and
// output. A non-zero exit is an *ExitError (the measurement is still
// returned).
//
// The peak RSS comes from GNU time (/usr/bin/time -f %M), not from the
// rusage Go's os/exec returns: Go starts children with vfork semantics
// (CLONE_VM), so the kernel seeds the child's ru_maxrss with the parent's
// high-water mark, and a harness holding a million-lead emulator would
// report its own size for every child. Without GNU time, Measure polls the
// child's VmHWM (a high-water mark, so only growth in the last poll
// interval can be missed).
func Measure(ctx context.Context, c Cmd) (Measurement, error) {
	path, args := c.Path, c.Args
	var timeOut string
	useTime := haveGNUTime()
	if useTime {
		f, err := os.CreateTemp("", "bench-time-*.txt")
		if err != nil {
			return Measurement{}, fmt.Errorf("creating the time output file: %w", err)
		}
		timeOut = f.Name()
		_ = f.Close()
		defer os.Remove(timeOut)
		path, args = timeBin, append([]string{"-f", "%M %U %S", "-o", timeOut, "--", c.Path}, c.Args...)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	}
	cmd.Stderr = &stderr
	// A group of its own, so that cancelling stops time and its child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	busy0, busyOK := machineBusy()
	start := time.Now()
	var hwm hwmPoller
	if err := cmd.Start(); err != nil {
		return Measurement{}, fmt.Errorf("running %s: %w", c.String(), err)
	}
	if !useTime {
		hwm.start(cmd.Process.Pid)
	}
	err := cmd.Wait()
	m := Measurement{Wall: time.Since(start), Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if busy1, ok := machineBusy(); ok && busyOK {
		m.MachineBusy = busy1 - busy0
	}
	if useTime {
		if rss, user, sys, ok := parseTimeOutput(timeOut); ok {
			m.MaxRSS, m.User, m.Sys = rss, user, sys
		}
	} else {
		m.MaxRSS = hwm.stop()
		if ps := cmd.ProcessState; ps != nil {
			m.User, m.Sys = ps.UserTime(), ps.SystemTime()
		}
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || ctx.Err() == nil {
			return m, &ExitError{Cmd: c.String(), Err: err, Stderr: stderr.String()}
		}
		return m, fmt.Errorf("running %s: %w", c.String(), err)
	}
	return m, nil
}

// machineBusy returns the CPU time all processes of the machine have spent
// since boot: the first line of /proc/stat (user, nice, system, idle,
// iowait, irq, softirq, steal, in USER_HZ ticks of 10 ms) without idle and
// iowait.
func machineBusy() (time.Duration, bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseProcStat(data)
}

// parseProcStat reads the busy time from the contents of /proc/stat.
func parseProcStat(data []byte) (time.Duration, bool) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, false
	}
	var busy int64
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += n
	}
	return time.Duration(busy) * 10 * time.Millisecond, true
}

// haveGNUTime reports whether /usr/bin/time is GNU time.
func haveGNUTime() bool {
	out, err := exec.Command(timeBin, "--version").CombinedOutput()
	return err == nil && bytes.Contains(out, []byte("GNU"))
}

// parseTimeOutput reads GNU time's "-f '%M %U %S'" line (the last line of
// the file; a line about a signal may come before it).
func parseTimeOutput(path string) (rss int64, user, sys time.Duration, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, false
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 3 {
		return 0, 0, 0, false
	}
	kb, err1 := strconv.ParseInt(f[0], 10, 64)
	u, err2 := strconv.ParseFloat(f[1], 64)
	sy, err3 := strconv.ParseFloat(f[2], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}
	return kb * 1024, time.Duration(u * float64(time.Second)), time.Duration(sy * float64(time.Second)), true
}

// hwmPoller follows a process's VmHWM (peak RSS) until stopped.
type hwmPoller struct {
	done chan struct{}
	out  chan int64
}

func (p *hwmPoller) start(pid int) {
	p.done, p.out = make(chan struct{}), make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v := ReadHWM(pid); v > peak {
				peak = v
			}
			select {
			case <-p.done:
				p.out <- peak
				return
			case <-t.C:
			}
		}
	}()
}

func (p *hwmPoller) stop() int64 {
	if p.done == nil {
		return 0
	}
	close(p.done)
	return <-p.out
}

// ReadHWM returns a live process's peak resident set size in bytes (VmHWM of
// /proc/<pid>/status), or 0 when it cannot be read.
func ReadHWM(pid int) int64 {
	v, ok := procField(fmt.Sprintf("/proc/%d/status", pid), "VmHWM")
	if !ok {
		return 0
	}
	f := strings.Fields(v) // "123456 kB"
	if len(f) == 0 {
		return 0
	}
	kb, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0
	}
	return kb * 1024
}

// Median returns the median of xs (the mean of the two middle values for an
// even count), or 0 for none.
func Median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Summary is the median of repeated measurements, with their spread.
type Summary struct {
	N       int
	Wall    time.Duration
	MinWall time.Duration
	MaxWall time.Duration
	MaxRSS  int64
	CPU     time.Duration
	// MachineBusy is the median of the machine's CPU time during each run.
	MachineBusy time.Duration
	AllWalls    []time.Duration
	AllMaxRSS   []int64
}

// Summarize takes the medians of ms.
func Summarize(ms []Measurement) Summary {
	s := Summary{N: len(ms)}
	if len(ms) == 0 {
		return s
	}
	walls := make([]time.Duration, len(ms))
	rss := make([]int64, len(ms))
	cpu := make([]time.Duration, len(ms))
	busy := make([]time.Duration, len(ms))
	for i, m := range ms {
		walls[i], rss[i], cpu[i], busy[i] = m.Wall, m.MaxRSS, m.User+m.Sys, m.MachineBusy
	}
	s.Wall, s.MaxRSS, s.CPU, s.MachineBusy = Median(walls), Median(rss), Median(cpu), Median(busy)
	s.MinWall, s.MaxWall = slices.Min(walls), slices.Max(walls)
	s.AllWalls, s.AllMaxRSS = walls, rss
	return s
}

// fmtDur formats a duration for a table: seconds with two or three
// significant decimals.
func fmtDur(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s < 10:
		return fmt.Sprintf("%.2f s", s)
	case s < 100:
		return fmt.Sprintf("%.1f s", s)
	default:
		return fmt.Sprintf("%.0f s", s)
	}
}

// fmtSpread formats a summary's wall time with its range over the repeats.
func fmtSpread(s Summary) string {
	if s.N <= 1 {
		return fmtDur(s.Wall)
	}
	return fmt.Sprintf("%s (%s–%s, n=%d)", fmtDur(s.Wall), strings.TrimSuffix(fmtDur(s.MinWall), " s"), fmtDur(s.MaxWall), s.N)
}

// fmtMB formats bytes in MiB.
func fmtMB(b int64) string {
	return fmt.Sprintf("%.0f MB", float64(b)/(1<<20))
}

// fmtInt formats an integer with thousands separators.
func fmtInt(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// verdict renders a goal check.
func verdict(met bool) string {
	if met {
		return "met"
	}
	return "**missed**"
}
