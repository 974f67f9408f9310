// Package freeport picks free TCP addresses on 127.0.0.1 for tests and test harnesses that must
// name an address before anything listens on it (a config file, a command-line flag, a closed
// port to dial). Code that can listen on :0 and read the address back should do that instead.
package freeport

import (
	"fmt"
	"net"
	"testing"
)

// Addr returns a 127.0.0.1 host:port that was free a moment ago. Another process can take it
// before the caller binds it; a caller that can retry with a new address should.
func Addr() (string, error) {
	a, err := free()
	if err != nil {
		return "", err
	}
	return a.String(), nil
}

// Port is the port number of a free 127.0.0.1 address, for programs that take a port alone.
func Port() (int, error) {
	a, err := free()
	if err != nil {
		return 0, err
	}
	return a.Port, nil
}

// MustAddr is Addr for a test: it fails tb when no address can be had.
func MustAddr(tb testing.TB) string {
	tb.Helper()
	addr, err := Addr()
	if err != nil {
		tb.Fatal(err)
	}
	return addr
}

// free binds port 0 on loopback, so the kernel picks an unused port, and lets it go.
func free() (*net.TCPAddr, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr), nil
}
