package proc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func start(t *testing.T, script string) *Process {
	t.Helper()
	p, err := Start(exec.Command("sh", "-c", script))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func TestExitIsRecorded(t *testing.T) {
	p := start(t, "exit 3")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.WaitReady(ctx, 10*time.Millisecond, func(context.Context) error { return errors.New("never") })
	if !errors.Is(err, ErrExited) {
		t.Fatalf("WaitReady = %v, want ErrExited", err)
	}
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.ExitCode() != 3 {
		t.Fatalf("Err = %v, want exit status 3", p.Err())
	}
	if err := p.Stop(syscall.SIGTERM, time.Second); !errors.As(err, &ee) {
		t.Fatalf("Stop of an exited process = %v, want its exit error", err)
	}
}

func TestStopSignalsThenKills(t *testing.T) {
	p := start(t, "sleep 30")
	if err := p.Stop(syscall.SIGTERM, 10*time.Second); err == nil || errors.Is(err, ErrKilled) ||
		p.Cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("Stop = %v (%v), want the process ended by SIGTERM", err, p.Cmd.ProcessState)
	}
	deaf := start(t, `trap "" TERM; while :; do sleep 0.05; done`)
	time.Sleep(200 * time.Millisecond) // let the shell install its trap
	if err := deaf.Stop(syscall.SIGTERM, 200*time.Millisecond); !errors.Is(err, ErrKilled) {
		t.Fatalf("Stop of a process that ignores SIGTERM = %v, want ErrKilled", err)
	}
}

func TestWaitReadyPollsUntilReadyOrDeadline(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	p := start(t, "sleep 30")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx, 10*time.Millisecond, HTTPReady(srv.URL)); err != nil || calls.Load() != 3 {
		t.Fatalf("WaitReady = %v after %d calls, want ready at the third", err, calls.Load())
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.WaitReady(short, 10*time.Millisecond, func(context.Context) error { return errors.New("not yet") })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not yet") {
		t.Fatalf("WaitReady past its deadline = %v, want the deadline and the last check", err)
	}
}

func TestBuffer(t *testing.T) {
	var b Buffer
	cmd := exec.Command("sh", "-c", "echo out; echo err >&2")
	cmd.Stdout, cmd.Stderr = &b, &b
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	<-p.Exited()
	if got := b.String(); !strings.Contains(got, "out\n") || !strings.Contains(got, "err\n") {
		t.Fatalf("Buffer = %q", got)
	}
}
