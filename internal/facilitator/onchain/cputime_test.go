package onchain

import (
	"syscall"
	"testing"
	"time"
)

// processCPU returns the user+system CPU time consumed by this process so far.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds a cpu-ns/op metric: CPU time of the whole process per iteration. On a machine
// shared with other work, wall-clock ns/op grows with the load; CPU time per op much less so.
// Call it as defer reportCPU(b)() before the b.Loop loop.
func reportCPU(b *testing.B) func() {
	b.Helper()
	start := processCPU(b)
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
