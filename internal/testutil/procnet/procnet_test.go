package procnet

import (
	"net"
	"os"
	"testing"
)

func TestSocketsOfThisProcess(t *testing.T) {
	lo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	if bad, err := NonLoopback(os.Getpid()); err != nil || len(bad) != 0 {
		t.Fatalf("NonLoopback = %v, %v; want none while only 127.0.0.1 is bound", bad, err)
	}
	all, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	bad, err := NonLoopback(os.Getpid())
	if err != nil || len(bad) != 1 {
		t.Fatalf("NonLoopback = %v, %v; want the wildcard listener", bad, err)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"0100007F:1F90":                         true,
		"00000000000000000000000001000000:1F90": true,
		"00000000:1F90":                         false,
		"020200C0:AD33":                         false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%s) = %t, want %t", addr, got, want)
		}
	}
}
