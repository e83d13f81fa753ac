package abuse

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		tl.Close()
		if err != nil {
			continue
		}
		ul.Close()
		return port
	}
	t.Fatal("no port free for TCP and UDP")
	return 0
}

// TestCookieBINDForwarder: a BIND resolver forwarding to us learns our
// server cookie and sends it back with its next queries.
func TestCookieBINDForwarder(t *testing.T) {
	named := testenv.RequireTool(t, "named")
	secret, _ := dnsserver.ParseCookieSecret("e5e973e5a6b2a43f48e7dc849e37bfcf")
	s, addr := startServer(t, dnsserver.Config{CookieSecrets: []dnsserver.CookieSecret{secret}})
	_, ourPort, _ := strings.Cut(addr, ":")
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`options {
    directory %q;
    listen-on port %d { 127.0.0.1; };
    listen-on-v6 { none; };
    pid-file %q;
    session-keyfile %q;
    recursion yes;
    allow-query { 127.0.0.1; };
    allow-recursion { 127.0.0.1; };
    dnssec-validation no;
    qname-minimization off;
    forward only;
    forwarders { 127.0.0.1 port %s; };
    send-cookie yes;
};
controls { };
`, dir, port, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), ourPort)
	cf := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cmd := exec.Command(named, "-g", "-n", "1", "-c", cf)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("named log:\n%s", log.String())
		}
	})
	resolver := fmt.Sprintf("127.0.0.1:%d", port)
	c := &dns.Client{Timeout: 2 * time.Second}
	ask := func(name string) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err := c.Exchange(m, resolver)
		return r, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := ask("ready.wild.example.com.")
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("BIND forwarding to us does not answer: %v %v", err, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Names not cached yet: each is forwarded to us.
	for i := 0; i < 5; i++ {
		if r, err := ask(fmt.Sprintf("n%d.wild.example.com.", i)); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Fatalf("query %d through BIND: %v %v", i, err, r)
		}
	}
	m := s.QueryMetrics().Cookies
	t.Logf("queries BIND forwarded to us, by cookie state: %v", m)
	if m["valid"] < 5 || m["invalid"] != 0 || m["badcookie"] != 0 {
		t.Fatalf("BIND did not keep and send back our cookie: %v", m)
	}
}
