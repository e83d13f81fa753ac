package fleet

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	"github.com/shoestring-dns/shoestring/cmd/fleet/web"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestEtcdFailover runs two controllers against one real etcd (Debian's
// etcd-server): the first leads, the second stands by (it serves the
// dashboard and API read-only, naming the leader, and refuses changes).
// A config rollout starts; in the middle of a wave the leader is killed
// (SIGKILL: its lease is left to expire). The standby leads within a few
// seconds, finishes the rollout from the stored state, and no node got
// the change twice (each runs generation 2, its last attempt too).
func TestEtcdFailover(t *testing.T) {
	began := time.Now()
	etcd := refserver.StartEtcd(t)
	common := []string{"-etcd", etcd.Endpoint, "-leader-ttl", "2s", "-pass-rounds", "8"}
	l := newLab(t, fourNodes(), append(common, "-name", "ctl-a")...)
	standby := startStandby(t, l, append(common, "-name", "ctl-b"))
	labUp := time.Now()
	t.Logf("etcd, 4 nodes and 2 controllers up in %s (binaries built)", labUp.Sub(began).Round(time.Millisecond))

	// Who leads, as both answer it.
	if c := controllerOf(t, l.url); c.Role != "leader" || c.Name != "ctl-a" {
		t.Fatalf("first controller: %+v, want ctl-a leading", c)
	}
	if c := controllerOf(t, standby.url); c.Role != "standby" || c.Leader != "ctl-a" {
		t.Fatalf("second controller: %+v, want a standby naming ctl-a", c)
	}
	// The dashboard and `status` say so too.
	resp, err := http.Get(standby.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if mark := `id="controller" data-role="standby" data-leader="ctl-a"`; !strings.Contains(string(page), mark) {
		t.Errorf("the standby's dashboard lacks %q", mark)
	}
	out, err := exec.Command(fleetBinary(t), "-c", standby.url, "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "controller: ctl-b (standby); leader: ctl-a") {
		t.Errorf("status on the standby: %v\n%s", err, out)
	}
	err = (&lab{t: t, url: standby.url}).try("PUT", "/api/groups/other", strings.NewReader("x"), nil)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "ctl-a") {
		t.Fatalf("a change sent to the standby: %v, want 503 naming the leader", err)
	}

	l.setV1()
	v2 := template("v2.zone")
	ro := l.startRollout(v2)
	ro = l.waitMidWave(t, ro.ID)
	// The standby's read-only view follows the leader's progress.
	if sro := (&lab{t: t, url: standby.url}).rollout(ro.ID); sro.State != rollout.Running {
		t.Fatalf("the standby shows the rollout %s", sro.State)
	}
	l.killController()
	killed := time.Now()
	t.Logf("killed the leader (SIGKILL) in wave %d", ro.Wave)
	if strings.Contains(l.ctlLog.String(), "DATA RACE") {
		t.Errorf("the killed leader raced:\n%s", l.ctlLog.String())
	}
	// From here on the lab talks to the standby, and stops it at the end.
	l.url, l.ctl, l.ctlLog = standby.url, standby.cmd, standby.log

	var led, acted time.Duration
	for led == 0 || acted == 0 {
		if led == 0 && controllerOf(t, l.url).Role == "leader" {
			led = time.Since(killed)
		}
		if acted == 0 && l.rollout(ro.ID).Updated.After(killed) {
			acted = time.Since(killed)
		}
		if time.Since(killed) > 15*time.Second {
			t.Fatalf("the standby did not take over within 15 s (leads after %s, acted after %s)", led, acted)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("failover with a 2 s lease: the standby leads %s after the kill, records its first rollout step after %s", led.Round(time.Millisecond), acted.Round(time.Millisecond))
	if c := controllerOf(t, l.url); c.Leader != "ctl-b" {
		t.Errorf("after the failover: %+v, want ctl-b leading", c)
	}

	ro = l.waitState(ro.ID, 60*time.Second, rollout.Completed, rollout.Halted)
	if ro.State != rollout.Completed {
		t.Fatalf("after the failover: %s: %s", ro.State, ro.Halt)
	}
	l.appliedOnce(t, v2)
	if !strings.Contains(l.ctlLog.String(), "leads; acting") {
		t.Errorf("the standby never logged taking over:\n%s", tail(l.ctlLog.String(), 20))
	}
	t.Logf("test runtime %s, of which the rollout and the failover %s", time.Since(began).Round(time.Millisecond), time.Since(labUp).Round(time.Millisecond))
}

type ctlProc struct {
	cmd *exec.Cmd
	log *testenv.SyncBuffer
	url string
}

// startStandby starts a second controller like l's (same store flags)
// on its own address, and waits until it answers.
func startStandby(t *testing.T, l *lab, extra []string) *ctlProc {
	t.Helper()
	ports, err := refserver.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	args := []string{"serve", "-listen", addr, "-poll", "300ms", "-gate-timeout", "3s", "-pass-rounds", "2", "-gate-interval", "200ms"}
	c := &ctlProc{log: &testenv.SyncBuffer{}, url: "http://" + addr}
	c.cmd = exec.Command(fleetBinary(t), append(args, extra...)...)
	c.cmd.Stderr = c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l.ctl != c.cmd { // once it is l's, l's cleanup stops it
			c.cmd.Process.Kill()
			c.cmd.Wait()
			if t.Failed() {
				t.Logf("standby controller log (tail):\n%s", tail(c.log.String(), 40))
			}
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(c.url + "/api/overview")
		if err == nil {
			resp.Body.Close()
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby controller not up: %v\n%s", err, c.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func controllerOf(t *testing.T, url string) web.Controller {
	t.Helper()
	var ov web.Overview
	if err := (&lab{t: t, url: url}).try("GET", "/api/overview", nil, &ov); err != nil {
		t.Fatal(errors.New("overview: " + err.Error()))
	}
	return ov.Controller
}
