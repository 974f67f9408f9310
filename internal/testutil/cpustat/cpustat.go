// Package cpustat reads CPU time, the whole machine's (from Linux's /proc/stat) and this
// process's, so that benchmarks can report CPU time per operation: on a shared machine that is
// much steadier than throughput or wall-clock time.
package cpustat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tick is the length of one /proc/stat tick: Linux counts in USER_HZ, 100 per second.
const Tick = 10 * time.Millisecond

// Machine returns the busy and total time of all CPUs in ticks, from the first line of
// /proc/stat: user nice system idle iowait irq softirq steal (then guest and guest_nice, already
// counted in user and nice). Idle, iowait and steal (time the hypervisor gave to other guests)
// are not busy. The error wraps fs.ErrNotExist where there is no /proc/stat.
func Machine() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("machine CPU: %w", err)
	}
	return parse(string(b))
}

func parse(stat string) (busy, total uint64, err error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("machine CPU: unexpected /proc/stat line %q", line)
	}
	var v [8]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("machine CPU: /proc/stat: %w", err)
		}
		total += v[i]
	}
	return total - v[3] - v[4] - v[7], total, nil
}

// Start measures the machine's busy CPU time from Start to the call of the function it returns.
func Start() (stop func() (time.Duration, error)) {
	busy0, _, err0 := Machine()
	return func() (time.Duration, error) {
		busy1, _, err := Machine()
		if err0 != nil {
			return 0, err0
		}
		if err != nil {
			return 0, err
		}
		return time.Duration(busy1-busy0) * Tick, nil
	}
}

// Process returns the user and system CPU time this process has used so far.
func Process() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// ReportPerOp adds a cpu-ns/op metric to b: the whole process's CPU time per iteration. On a
// machine shared with other work, wall-clock ns/op grows with the load; CPU time per op much less
// so. Call it as defer cpustat.ReportPerOp(b)() before the b.Loop loop.
func ReportPerOp(b *testing.B) func() {
	b.Helper()
	start, err := Process()
	if err != nil {
		b.Fatal(err)
	}
	return func() {
		end, err := Process()
		if err != nil {
			b.Fatal(err)
		}
		if b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// Command returns the CPU time used so far by every process whose name (/proc/PID/comm) is
// name, with the time of its children that have exited and been waited for: for a server such
// as PostgreSQL, whose postmaster reaps its backends, the sum over its processes counts the
// backends that come and go. Processes that exit unreaped between two readings are missed.
func Command(name string) (time.Duration, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("processes named %s: %w", name, err)
	}
	var ticks uint64
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + d.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// Fields after the parenthesised command: state is field 3; utime, stime, cutime and
		// cstime are fields 14 to 17.
		_, rest, ok := strings.Cut(string(stat), ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 15 {
			continue
		}
		for _, s := range f[11:15] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%s/stat: %w", d.Name(), err)
			}
			ticks += v
		}
	}
	return time.Duration(ticks) * Tick, nil
}

// Children returns the CPU time used so far by this process's children, by command name, each
// with all its descendants, alive or reaped: a test's envtest (kube-apiserver, etcd) and its
// PostgreSQL server with every backend. Unlike Command it does not count another test binary's
// servers of the same name on a shared machine.
func Children() (map[string]time.Duration, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("child processes: %w", err)
	}
	type proc struct {
		parent int
		comm   string
		ticks  uint64
	}
	procs := map[int]proc{}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid …": comm may hold spaces and parentheses, so cut at the last ")".
		i := strings.LastIndexByte(string(stat), ')')
		j := strings.IndexByte(string(stat), '(')
		if i < 0 || j < 0 || j > i {
			continue
		}
		f := strings.Fields(string(stat)[i+2:])
		if len(f) < 15 {
			continue
		}
		p := proc{comm: string(stat)[j+1 : i]}
		if p.parent, err = strconv.Atoi(f[1]); err != nil {
			continue
		}
		for _, s := range f[11:15] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/stat: %w", pid, err)
			}
			p.ticks += v
		}
		procs[pid] = p
	}
	self := os.Getpid()
	out := map[string]time.Duration{}
	for pid, p := range procs {
		// Walk up to the ancestor that is a child of this process, if any.
		top, cur := -1, pid
		for range 64 {
			q, ok := procs[cur]
			if !ok {
				break
			}
			if q.parent == self {
				top = cur
				break
			}
			cur = q.parent
		}
		if top >= 0 {
			out[procs[top].comm] += time.Duration(p.ticks) * Tick
		}
	}
	return out, nil
}
