package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/nslab"
)

// runHelperSpeaker is the speaker process that TestBIRDKillProcess kills:
// the test binary re-executed with envHelper set. It announces the eBGP
// routes and runs until killed (or a minute passes, so that it can never
// outlive a test run for long).
func runHelperSpeaker() {
	s, err := New(ebgpConfig(), slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err == nil {
		err = s.SetRoutes(ebgpRoutes(false))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// kill -9 of the speaker: the kernel closes its TCP connections, and BIRD
// drops the routes at once rather than after the hold time.
func TestBIRDKillProcess(t *testing.T) {
	l := nslab.Require(t)
	b := startBIRD(t, l, birdEBGP)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envHelper+"=1")
	cmd.Stderr = os.Stderr
	if !testing.Verbose() {
		cmd.Stderr = nil
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-waited })

	eventually(t, 5*time.Second, "routes at BIRD", func() bool {
		return len(b.routes(t, "spk4")) == 2 && len(b.routes(t, "spk6")) == 2
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-waited
	eventually(t, 3*time.Second, "routes gone from BIRD", func() bool {
		return len(b.routes(t, "spk4")) == 0 && len(b.routes(t, "spk6")) == 0
	})
	gone := time.Since(killed)
	t.Logf("kill -9 to routes gone at BIRD: %v (hold time 9 s)", gone)
	if gone > time.Second {
		t.Errorf("routes took %v to go; want well under the hold time", gone)
	}
}
