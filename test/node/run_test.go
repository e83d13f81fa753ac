package node_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// waitAnswer polls until name answers with want, or fails after 10 s.
func waitAnswer(t *testing.T, addr, name, want string) {
	t.Helper()
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err := c.Exchange(m, addr)
		if err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %s: %v %v", name, want, err, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunConfigAndLastGood runs the binary from a config file, then
// breaks the file: `run -check` names the bad line, and `run` keeps the
// node serving with the last config that worked instead of going dark.
func TestRunConfigAndLastGood(t *testing.T) {
	bin := testenv.Binary(t)
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "example.org.zone")
	os.WriteFile(zoneFile, []byte("$TTL 300\n@ IN SOA ns1 h 1 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.44\n"), 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	good := fmt.Sprintf(`node:
  name: run-test
data_dir: %s
dns:
  listen: ["%s"]
management:
  listen: "127.0.0.1:0"
zones:
  - origin: example.org
    file: %s
`, filepath.Join(dir, "data"), addr, zoneFile)
	cfgFile := filepath.Join(dir, "node.yaml")
	os.WriteFile(cfgFile, []byte(good), 0o644)

	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "-config", cfgFile)
		log := &testenv.SyncBuffer{}
		cmd.Stderr = log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("node log:\n%s", log.String())
			}
		})
		return cmd
	}
	stop := func(cmd *exec.Cmd) {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("node did not exit cleanly: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("node did not stop within 10 s of SIGINT")
		}
	}

	cmd := start()
	waitAnswer(t, addr, "www.example.org.", "192.0.2.44")
	stop(cmd)

	os.WriteFile(cfgFile, []byte(strings.Replace(good, "  name: run-test", "  name: run-test\n  colour: blue", 1)), 0o644)
	out, err := exec.Command(bin, "run", "-config", cfgFile, "-check").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "line 3") || !strings.Contains(string(out), "colour") {
		t.Fatalf("run -check on a bad file: err %v, output %q", err, out)
	}
	cmd = exec.Command(bin, "run", "-config", cfgFile, "-data", filepath.Join(dir, "data"))
	log := &testenv.SyncBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitAnswer(t, addr, "www.example.org.", "192.0.2.44")
	if !strings.Contains(log.String(), "last config that worked") {
		t.Fatalf("fallback not reported in the log:\n%s", log.String())
	}
}
