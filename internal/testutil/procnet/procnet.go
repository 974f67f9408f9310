// Package procnet lists the sockets a process holds, from Linux's /proc, so that tests can
// check that local servers bind to loopback only.
package procnet

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sockets returns the local addresses ("hexIP:hexPort", as in /proc/net/*) of every TCP and
// UDP socket the process pid holds, so a test can check that nothing but loopback is bound.
func Sockets(pid int) (map[string]string, error) {
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fd)
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	addrs := map[string]string{} // local address → table
	for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open(filepath.Join("/proc", fmt.Sprint(pid), "net", table))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && inodes[fields[9]] {
				addrs[fields[1]] = table
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return addrs, nil
}

// IsLoopback reports whether a /proc/net local address is 127.0.0.1 or ::1.
func IsLoopback(addr string) bool {
	ip, _, _ := strings.Cut(addr, ":")
	return ip == "0100007F" || ip == "00000000000000000000000001000000"
}

// NonLoopback lists the sockets of pid bound elsewhere than loopback, as "table addr".
func NonLoopback(pid int) ([]string, error) {
	addrs, err := Sockets(pid)
	if err != nil {
		return nil, err
	}
	var out []string
	for addr, table := range addrs {
		if !IsLoopback(addr) {
			out = append(out, table+" "+addr)
		}
	}
	return out, nil
}
