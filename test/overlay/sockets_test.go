package overlay

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// checkSockets lists the sockets of a node's process from /proc and fails
// for any that can be reached from outside but is neither DNS (53), BGP
// (179) nor the tailnet's WireGuard port: no TCP listener, no unconnected
// UDP socket. Connections the node made itself (to its control server, to
// DERP) are not listening and do not count.
func checkSockets(t *testing.T, rn *runningNode) {
	t.Helper()
	pid := rn.cmd.Process.Pid
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	// DNS is 53 on a box; the lab's nodes answer on ports of their own.
	allowed := map[int]bool{53: true, 179: true, rn.cfg.Overlay.Port: true}
	for _, l := range rn.cfg.DNS.Listen {
		_, port, _ := net.SplitHostPort(string(l))
		p, _ := strconv.Atoi(port)
		allowed[p] = true
	}
	var listening []string
	for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
		for _, s := range readSockets(t, fmt.Sprintf("/proc/%d/net/%s", pid, table)) {
			if !inodes[s.inode] {
				continue
			}
			tcp := strings.HasPrefix(table, "tcp")
			// TCP state 0A is LISTEN; a UDP socket with no remote
			// address takes datagrams from anyone.
			open := (tcp && s.state == "0A") || (!tcp && s.remotePort == 0)
			if !open {
				continue
			}
			listening = append(listening, fmt.Sprintf("%s:%d", table, s.localPort))
			if !allowed[s.localPort] {
				t.Errorf("%s listens on %s port %d (local %s): only DNS, BGP and WireGuard may", rn.name, table, s.localPort, s.local)
			}
		}
	}
	if len(listening) == 0 {
		t.Fatalf("%s: found no sockets at all; is /proc readable?", rn.name)
	}
	t.Logf("%s listens on %v", rn.name, listening)
}

type procSocket struct {
	local      string
	localPort  int
	remotePort int
	state      string
	inode      string
}

// readSockets parses /proc/net/{tcp,udp}[6].
func readSockets(t *testing.T, path string) []procSocket {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []procSocket
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		out = append(out, procSocket{
			local:      fields[1],
			localPort:  hexPort(fields[1]),
			remotePort: hexPort(fields[2]),
			state:      fields[3],
			inode:      fields[9],
		})
	}
	return out
}

func hexPort(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	p, _ := strconv.ParseUint(addr[i+1:], 16, 16)
	return int(p)
}

func decodeBody(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
