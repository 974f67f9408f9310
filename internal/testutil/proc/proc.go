// Package proc runs child processes for tests and test harnesses: it starts a command the caller
// has set up, records its exit, waits until it is ready while watching for an early exit, and
// stops it with a signal, killing it when it outlasts a grace period.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"time"
)

var (
	// ErrExited is wrapped by WaitReady's error when the process exits before it is ready.
	ErrExited = errors.New("exited during start-up")
	// ErrKilled is wrapped by Stop's error when the process outlasted its grace period.
	ErrKilled = errors.New("killed")
)

// Process is a started command whose exit is being waited for.
type Process struct {
	// Cmd is the started command; read Cmd.ProcessState only once Exited is closed.
	Cmd *exec.Cmd

	exited chan struct{}
	err    error
}

// Start starts cmd (arguments, environment, output and SysProcAttr are the caller's) and waits
// for its exit in the background. The error is cmd.Start's, for the caller to say what it was
// starting.
func Start(cmd *exec.Cmd) (*Process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is the exit error (nil for a clean exit) once Exited is closed, nil before.
func (p *Process) Err() error {
	select {
	case <-p.exited:
		return p.err
	default:
		return nil
	}
}

// Stop sends sig and waits up to grace for the process to exit, then kills it. It returns the
// exit error (nil for a clean exit), or an error wrapping ErrKilled. A process that has already
// exited is not signalled: Stop returns its exit error.
func (p *Process) Stop(sig os.Signal, grace time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	_ = p.Cmd.Process.Signal(sig) // fails only if it has exited meanwhile
	select {
	case <-p.exited:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("%s: no exit within %s of signal %q: %w", p.Cmd.Path, grace, sig, ErrKilled)
	}
}

// Kill kills the process, if it still runs, and waits for its exit.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill() // fails only if it has exited already
	<-p.exited
}

// WaitReady calls ready every interval until it returns nil, the process exits (an error
// wrapping ErrExited) or ctx ends (an error wrapping ctx.Err(), with ready's last error).
func (p *Process) WaitReady(ctx context.Context, interval time.Duration, ready func(context.Context) error) error {
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w (%v)", ErrExited, p.Cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// HTTPReady is a readiness check for WaitReady: a GET of url answers 200.
func HTTPReady(url string) func(context.Context) error {
	return HTTPCheck(url, func(resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
}

// HTTPCheck is a readiness check for WaitReady: a GET of url answers a response that ok accepts
// (ok sees the head; the body is drained and closed after it).
func HTTPCheck(url string, ok func(*http.Response) error) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		defer func() { _, _ = io.Copy(io.Discard, resp.Body) }()
		return ok(resp)
	}
}

// Buffer collects a process's output while a test reads it. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
