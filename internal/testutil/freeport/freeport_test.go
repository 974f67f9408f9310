package freeport

import (
	"net"
	"strings"
	"testing"
)

func TestAddrIsFreeOnLoopback(t *testing.T) {
	addr := MustAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("MustAddr = %q, want a 127.0.0.1 address", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the address handed out cannot be bound: %v", err)
	}
	l.Close()
	if p, err := Port(); err != nil || p <= 0 || p > 65535 {
		t.Fatalf("Port = %d, %v", p, err)
	}
}
