package cpustat

import (
	"os/exec"
	"testing"
	"time"
)

func TestParseCountsIdleIowaitAndStealAsNotBusy(t *testing.T) {
	busy, total, err := parse("cpu  100 5 30 1000 7 1 2 11 50 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if err != nil {
		t.Fatal(err)
	}
	if busy != 100+5+30+1+2 || total != 100+5+30+1000+7+1+2+11 {
		t.Errorf("busy %d total %d, want 138 and 1156", busy, total)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) gave no error", bad)
		}
	}
}

func TestMachineCountsBusyTime(t *testing.T) {
	stop := Start()
	deadline := time.Now().Add(300 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ { // keep one CPU busy for 0.3 s
		_ = x * x
	}
	busy, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if busy <= 0 {
		t.Errorf("busy %v after spinning a CPU for 0.3 s", busy)
	}
}

func TestChildrenCountsAChildAndItsDescendants(t *testing.T) {
	// sh spins in a child subshell, so the time is a descendant's, then sleeps so it is still alive.
	cmd := exec.Command("sh", "-c", `(i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done); sleep 30`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := Children()
		if err != nil {
			t.Fatal(err)
		}
		if got["sh"] >= 50*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Children() = %v, want sh with its subshell's CPU time", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
