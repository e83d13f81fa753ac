package bfd

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/nslab"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// The BIRD tests run in nslab's namespaces, BFD on port 3784 as in
// production; see package nslab.
func TestMain(m *testing.M) {
	if os.Getenv(envHelper) != "" {
		runHelper()
	}
	os.Exit(nslab.Main(m, "ssbfd"))
}

const birdBFD = `log stderr all;
router id ` + nslab.PeerIP4 + `;
protocol device { scan time 1; }
protocol bfd {
	interface "` + nslab.PeerDev + `" { min rx interval 50 ms; min tx interval 50 ms; idle tx interval 200 ms; multiplier 3; };
	neighbor ` + nslab.SpeakerIP4 + ` dev "` + nslab.PeerDev + `";
	neighbor ` + nslab.SpeakerIP6 + ` dev "` + nslab.PeerDev + `";
}
`

// birdStates maps neighbour address to BIRD's session state.
func birdStates(t *testing.T, b *refserver.Bird) map[string]string {
	out := b.Cmd(t, "show", "bfd", "sessions")
	st := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 {
			if _, err := netip.ParseAddr(f[0]); err == nil {
				st[f[0]] = f[2]
			}
		}
	}
	return st
}

// birdTimers maps neighbour address to BIRD's "interval/timeout" of the
// session, in seconds as birdc shows them ("0.050/0.150").
func birdTimers(t *testing.T, b *refserver.Bird) map[string]string {
	out := b.Cmd(t, "show", "bfd", "sessions")
	tm := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 {
			if _, err := netip.ParseAddr(f[0]); err == nil {
				tm[f[0]] = f[4] + "/" + f[5]
			}
		}
	}
	return tm
}

func birdAll(t *testing.T, b *refserver.Bird, want string) bool {
	st := birdStates(t, b)
	return st[nslab.SpeakerIP4] == want && st[nslab.SpeakerIP6] == want
}

func labConfig(onChange func(Event)) Config {
	ms := 50 * time.Millisecond
	return Config{OnChange: onChange, Sessions: []SessionConfig{
		{Name: "v4", Peer: netip.MustParseAddr(nslab.PeerIP4), Local: netip.MustParseAddr(nslab.SpeakerIP4),
			Interface: nslab.SpeakerDev, DesiredMinTx: ms, RequiredMinRx: ms, DetectMult: 3},
		{Name: "v6", Peer: netip.MustParseAddr(nslab.PeerIP6), Local: netip.MustParseAddr(nslab.SpeakerIP6),
			Interface: nslab.SpeakerDev, DesiredMinTx: ms, RequiredMinRx: ms, DetectMult: 3},
	}}
}

func allState(s *Server, want State) bool {
	for _, st := range s.Status() {
		if st.State != want {
			return false
		}
	}
	return true
}

// downEvents waits for both sessions to report leaving Up and returns the
// time of the later event.
func downEvents(t *testing.T, ev *events, after time.Time, timeout time.Duration) time.Time {
	t.Helper()
	var last time.Time
	eventually(t, timeout, "both sessions reported down", func() bool {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		seen := map[string]time.Time{}
		for _, e := range ev.evs {
			if e.From == Up && e.To == Down && e.At.After(after) {
				seen[e.Name] = e.At
			}
		}
		if len(seen) < 2 {
			return false
		}
		last = seen["v4"]
		if seen["v6"].After(last) {
			last = seen["v6"]
		}
		return true
	})
	return last
}

func TestBIRD(t *testing.T) {
	l := nslab.Require(t)
	b := l.StartBIRD(t, birdBFD)
	var ev events
	s, _ := startServer(t, labConfig(ev.add))
	took := eventually(t, 5*time.Second, "Up on both sides", func() bool { return allState(s, Up) && birdAll(t, b, "Up") })
	t.Logf("IPv4 and IPv6 sessions Up %v after start", took)
	eventually(t, 2*time.Second, "negotiated timers", func() bool {
		for _, st := range s.Status() {
			if st.TxInterval != 50*time.Millisecond || st.DetectionTime != 150*time.Millisecond {
				return false
			}
		}
		return true
	})

	// BIRD frozen: we notice within the detection time (150 ms).
	stopped := time.Now()
	if err := b.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	at := downEvents(t, &ev, stopped, 2*time.Second)
	b.Signal(syscall.SIGCONT)
	t.Logf("BIRD frozen: our sessions down %v later (detection time 150 ms)", at.Sub(stopped))
	if d := at.Sub(stopped); d > 500*time.Millisecond {
		t.Errorf("detection took %v", d)
	}
	ev.mu.Lock()
	for _, e := range ev.evs {
		if e.From == Up && e.To == Down && e.At.After(stopped) && e.Diag != DiagControlDetectionTimeExpired {
			t.Errorf("down event %+v, want diag control detection time expired", e)
		}
	}
	ev.mu.Unlock()
	took = eventually(t, 5*time.Second, "Up again after BIRD resumes", func() bool { return allState(s, Up) && birdAll(t, b, "Up") })
	t.Logf("Up again %v after SIGCONT", took)

}

// Stopping the server tells BIRD AdminDown at once, rather than leaving it
// to detect a failure.
func TestBIRDAdminDown(t *testing.T) {
	l := nslab.Require(t)
	b := l.StartBIRD(t, birdBFD)
	s, stop := startServer(t, labConfig(nil))
	eventually(t, 5*time.Second, "Up on both sides", func() bool { return allState(s, Up) && birdAll(t, b, "Up") })
	stop()
	took := eventually(t, time.Second, "BIRD Down", func() bool { return birdAll(t, b, "Down") })
	t.Logf("BIRD Down %v after our AdminDown", took)
}

// A frozen speaker (SIGSTOP, the process alive but silent) is noticed by
// BIRD within its detection time. The speaker is this test binary
// re-executed with envHelper, so that it can be frozen without freezing
// the test.
func TestBIRDFrozenSpeaker(t *testing.T) {
	l := nslab.Require(t)
	b := l.StartBIRD(t, birdBFD)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envHelper+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-waited })
	eventually(t, 5*time.Second, "BIRD Up", func() bool { return birdAll(t, b, "Up") })
	// Past the Poll Sequence: BIRD runs both sessions on the fast timers
	// (50 ms interval, 150 ms detection time) before the freeze.
	eventually(t, 2*time.Second, "BIRD on fast timers", func() bool {
		tm := birdTimers(t, b)
		return tm[nslab.SpeakerIP4] == "0.050/0.150" && tm[nslab.SpeakerIP6] == "0.050/0.150"
	})

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 2*time.Second, "BIRD sees both sessions down", func() bool {
		st := birdStates(t, b)
		return st[nslab.SpeakerIP4] != "Up" && st[nslab.SpeakerIP6] != "Up"
	})
	t.Logf("speaker frozen: BIRD's sessions down by %v (detection time 150 ms; birdc polled)", took)
	if took > 500*time.Millisecond {
		t.Errorf("BIRD took %v", took)
	}
}

// envHelper makes the test binary the BFD speaker TestBIRDFrozenSpeaker
// freezes.
const envHelper = "SHOESTRING_BFD_HELPER"

func runHelper() {
	s, err := New(labConfig(nil), nil)
	if err != nil {
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.Run(ctx) != nil {
		os.Exit(1)
	}
	os.Exit(0)
}
