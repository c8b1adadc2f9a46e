package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Machine describes where the figures were taken.
type Machine struct {
	CPU      string
	Cores    int
	RAM      int64 // bytes
	Kernel   string
	Go       string
	Postgres string
}

// String renders the machine on one line.
func (m Machine) String() string {
	return fmt.Sprintf("%s, %d cores, %.1f GB RAM, Linux %s, %s, PostgreSQL %s",
		m.CPU, m.Cores, float64(m.RAM)/(1<<30), m.Kernel, m.Go, m.Postgres)
}

// DescribeMachine reads the machine's CPU, memory, kernel, Go and Postgres
// versions. Parts it cannot read are reported as "unknown".
func DescribeMachine(ctx context.Context, pgURL string) Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), Kernel: "unknown", Go: runtime.Version(), Postgres: "unknown"}
	if v, ok := procField("/proc/cpuinfo", "model name"); ok {
		m.CPU = v
	}
	if v, ok := procField("/proc/meminfo", "MemTotal"); ok {
		f := strings.Fields(v) // "24552092 kB"
		if len(f) > 0 {
			if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				m.RAM = kb * 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	}
	if conn, err := pgx.Connect(ctx, pgURL); err == nil {
		var v string
		if conn.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
			m.Postgres = v
		}
		_ = conn.Close(ctx)
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// LoadAvg returns the 1-minute load average, or -1 when unknown.
func LoadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
