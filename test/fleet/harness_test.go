package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

var (
	fleetOnce sync.Once
	fleetBin  string
	fleetErr  error
	fleetOut  []byte
)

// fleetBinary builds cmd/fleet once per test binary.
func fleetBinary(t *testing.T) string {
	t.Helper()
	fleetOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shoestring-fleet-bin-")
		if err != nil {
			fleetErr = err
			return
		}
		fleetBin = filepath.Join(dir, "shoestring-fleet")
		// -trimpath and no cgo: make fleet-build's flags, and make
		// test's compiles', so that one build cache serves them all but
		// for the tailscale packages the tags change.
		args := []string{"build", "-trimpath", "-o", fleetBin}
		if tags, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "firmware", "overlay", "buildtags.txt")); err == nil {
			args = append(args, "-tags", strings.TrimSpace(string(tags)))
		}
		if os.Getenv("FLEET_RACE") != "" { // the controller under the race detector
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/fleet")...)
		cmd.Dir = testenv.RepoRoot()
		if os.Getenv("FLEET_RACE") == "" { // -race needs cgo
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		fleetOut, fleetErr = cmd.CombinedOutput()
	})
	if fleetErr != nil {
		t.Fatalf("building shoestring-fleet: %v\n%s", fleetErr, fleetOut)
	}
	return fleetBin
}

// lab is a set of dev nodes and a controller.
type lab struct {
	t       *testing.T
	dir     string
	nodes   []inventory.Node
	procs   map[string]*exec.Cmd
	ctl     *exec.Cmd
	ctlLog  *testenv.SyncBuffer
	url     string
	ctlArgs []string
}

const zoneV1 = "$TTL 60\n@ IN SOA ns1 h 1 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.10\n"
const zoneV2 = "$TTL 60\n@ IN SOA ns1 h 2 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.20\n"

// zoneBad has no www: the canary query www.rollout.test/A gets NXDOMAIN.
const zoneBad = "$TTL 60\n@ IN SOA ns1 h 3 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"

// template renders a dev node's config with the given zone file.
func template(zoneFile string) string {
	return `node:
  name: {{.Node.Name}}
data_dir: {{.Vars.data}}
dns:
  listen: ["{{.Node.DNS}}"]
management:
  listen: {{.Node.API}}
zones:
  - origin: rollout.test
    file: {{.Vars.zones}}/` + zoneFile + "\n"
}

// newLab starts one dev node per spec (name, region, wave, prefixes in
// the inventory) and a controller with extra serve flags.
func newLab(t *testing.T, specs []inventory.Node, ctlArgs ...string) *lab {
	t.Helper()
	return newLabWith(t, specs, nil, ctlArgs...)
}

// newLabWith is newLab with extra `shoestring dev` flags per node.
func newLabWith(t *testing.T, specs []inventory.Node, devArgs map[string][]string, ctlArgs ...string) *lab {
	t.Helper()
	bin := testenv.Binary(t)
	l := &lab{t: t, dir: t.TempDir(), procs: map[string]*exec.Cmd{}}
	zones := filepath.Join(l.dir, "zones")
	os.MkdirAll(zones, 0o755)
	for name, text := range map[string]string{"v1.zone": zoneV1, "v2.zone": zoneV2, "bad.zone": zoneBad} {
		os.WriteFile(filepath.Join(zones, name), []byte(text), 0o644)
	}
	ports, err := refserver.Ports(2*len(specs) + 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range specs {
		n.API = fmt.Sprintf("127.0.0.1:%d", ports[2*i])
		n.DNS = fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])
		n.Group = "lab"
		n.Vars = map[string]string{"data": filepath.Join(l.dir, n.Name), "zones": zones}
		l.nodes = append(l.nodes, n)
		log := &testenv.SyncBuffer{}
		cmd := exec.Command(bin, append([]string{"dev", "-data", n.Vars["data"], "-nsid", n.Name, "-listen", n.DNS, "-http", n.API}, devArgs[n.Name]...)...)
		cmd.Stderr = log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		l.procs[n.Name] = cmd
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("node %s log (tail):\n%s", n.Name, tail(log.String(), 30))
			}
		})
	}
	l.url = fmt.Sprintf("http://127.0.0.1:%d", ports[len(ports)-1])
	l.ctlArgs = append([]string{"serve", "-store", filepath.Join(l.dir, "fleet.db"), "-listen", strings.TrimPrefix(l.url, "http://"),
		"-poll", "300ms", "-gate-timeout", "3s", "-pass-rounds", "2", "-gate-interval", "200ms"}, ctlArgs...)
	l.startController()
	t.Cleanup(func() {
		if l.ctl != nil {
			l.ctl.Process.Kill()
			l.ctl.Wait()
		}
		if strings.Contains(l.ctlLog.String(), "DATA RACE") {
			t.Errorf("the controller raced:\n%s", l.ctlLog.String())
		}
		if t.Failed() {
			t.Logf("controller log (tail):\n%s", tail(l.ctlLog.String(), 40))
		}
	})
	for _, n := range l.nodes {
		l.waitNode(n)
		l.post("/api/nodes", n, nil)
	}
	return l
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (l *lab) startController() {
	l.t.Helper()
	if l.ctlLog == nil {
		l.ctlLog = &testenv.SyncBuffer{}
	}
	l.ctl = exec.Command(fleetBinary(l.t), l.ctlArgs...)
	l.ctl.Stderr = l.ctlLog
	if err := l.ctl.Start(); err != nil {
		l.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(l.url + "/api/overview")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("controller not up: %v\n%s", err, l.ctlLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killController kills the controller hard (SIGKILL: no clean stop).
func (l *lab) killController() {
	l.ctl.Process.Kill()
	l.ctl.Wait()
	l.ctl = nil
}

func (l *lab) waitNode(n inventory.Node) {
	l.t.Helper()
	c := api.NewClient(n.API)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := c.Health(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("node %s not healthy within 15 s", n.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call makes a controller API call and fails the test on an error.
func (l *lab) call(method, path string, body io.Reader, out any) {
	l.t.Helper()
	if err := l.try(method, path, body, out); err != nil {
		l.t.Fatalf("%s %s: %v", method, path, err)
	}
}

func (l *lab) try(method, path string, body io.Reader, out any) error {
	req, _ := http.NewRequest(method, l.url+path, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (l *lab) post(path string, in, out any) {
	l.t.Helper()
	b, _ := json.Marshal(in)
	l.call("POST", path, bytes.NewReader(b), out)
}

// setV1 sets the group's first template and applies it to every node.
func (l *lab) setV1() {
	l.t.Helper()
	l.call("PUT", "/api/groups/lab", strings.NewReader(template("v1.zone")), nil)
	for _, n := range l.nodes {
		l.call("POST", "/api/nodes/"+n.Name+"/correct", nil, nil)
	}
}

// startRollout starts a rollout of the template with the www canary.
func (l *lab) startRollout(tmpl string) *rollout.Rollout {
	l.t.Helper()
	var ro rollout.Rollout
	l.post("/api/rollouts", map[string]any{"group": "lab", "template": tmpl, "canaries": []rollout.Query{{Name: "www.rollout.test.", Type: "A"}}}, &ro)
	return &ro
}

func (l *lab) rollout(id string) *rollout.Rollout {
	l.t.Helper()
	var ro rollout.Rollout
	l.call("GET", "/api/rollouts/"+id, nil, &ro)
	return &ro
}

// waitState waits until the rollout is in one of states.
func (l *lab) waitState(id string, within time.Duration, states ...string) *rollout.Rollout {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ro := l.rollout(id)
		for _, s := range states {
			if ro.State == s {
				return ro
			}
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(ro, "", "  ")
			l.t.Fatalf("rollout %s is %s after %s, want %v:\n%s", id, ro.State, within, states, tail(string(b), 60))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// config reads a node's running config straight from the node.
func (l *lab) config(n inventory.Node) api.ConfigStatus {
	l.t.Helper()
	cs, err := api.NewClient(n.API).Config()
	if err != nil {
		l.t.Fatalf("node %s: %v", n.Name, err)
	}
	return cs
}
