//go:build e2e

package devchain

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// socketAddrs returns the local addresses ("hexIP:hexPort", as in /proc/net/*) of every TCP and
// UDP socket the process pid holds, so a test can check that nothing but loopback is bound.
func socketAddrs(pid int) (map[string]string, error) {
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

// isLoopback reports whether a /proc/net local address is 127.0.0.1 or ::1.
func isLoopback(addr string) bool {
	ip, _, _ := strings.Cut(addr, ":")
	return ip == "0100007F" || ip == "00000000000000000000000001000000"
}
