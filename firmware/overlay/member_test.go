package overlay

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/access"
	"github.com/shoestring-dns/shoestring/firmware/config"
)

func TestOnTailnet(t *testing.T) {
	for addr, want := range map[string]bool{
		"100.64.0.1:53":           true,
		"100.127.255.254":         true,
		"[fd7a:115c:a1e0::1]:53":  true,
		"[::ffff:100.100.1.1]:53": true,
		"primary.tailnet.example": true,
		"primary:53":              true,
		"192.0.2.1:53":            false,
		"100.128.0.1:53":          false,
		"[2001:db8::1]:53":        false,
		"[fd7a:115c:a1e1::1]:53":  false,
		"127.0.0.1":               false,
		"[::ffff:192.0.2.1]:53":   false,
	} {
		if got := OnTailnet(addr); got != want {
			t.Errorf("OnTailnet(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestMemberOff: without overlay.enabled nothing joins a tailnet; dialling
// is direct, management listens on loopback, every caller there is a local
// admin, and management counts as reachable.
func TestMemberOff(t *testing.T) {
	cfg := &config.Config{DataDir: t.TempDir()}
	cfg.Management.Listen = "127.0.0.1:0"
	m := NewMember(cfg, slog.New(slog.DiscardHandler))
	if m.Tailnet() != nil {
		t.Fatal("joined a tailnet without overlay.enabled")
	}
	if _, ok := m.Status(); ok {
		t.Error("status without a tailnet")
	}
	if ok, why := m.Reachable(); !ok {
		t.Errorf("not reachable: %s", why)
	}
	if _, ok := m.Resolver().(access.Loopback); !ok {
		t.Errorf("resolver %T", m.Resolver())
	}
	lns, err := m.Listeners()
	if err != nil || len(lns) != 1 {
		t.Fatalf("listeners %v %v", lns, err)
	}
	defer lns[0].Close()
	go func() {
		if c, err := lns[0].Accept(); err == nil {
			io.WriteString(c, "hi")
			c.Close()
		}
	}()
	c, err := m.Dial(context.Background(), "tcp", lns[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "hi" {
		t.Errorf("read %q", b)
	}
}

// TestMemberNeverWaits: with a control server that never answers, the
// status readers (the overview, every metrics scrape, health) get an
// answer at once — "not running" — instead of waiting on the tailnet.
func TestMemberNeverWaits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a tsnet node")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a control server that accepts and says nothing
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg := &config.Config{DataDir: t.TempDir()}
	cfg.Overlay.Enabled = true
	cfg.Overlay.Hostname = "never"
	cfg.Overlay.ControlURL = "http://" + ln.Addr().String()
	cfg.Overlay.AuthKey = "nokey"
	m := NewMember(cfg, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.Run(ctx, nopDNS{})
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		start := time.Now()
		st, ok := m.Status()
		ok2, why := m.Reachable()
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Fatalf("Status and Reachable took %v", d)
		}
		if !ok || st.State == "running" || ok2 || !strings.Contains(why, "tailnet") {
			t.Fatalf("status %+v %v, reachable %v %q", st, ok, ok2, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type nopDNS struct{}

func (nopDNS) ServeListener(net.Listener) error     { return nil }
func (nopDNS) ServePacketConn(net.PacketConn) error { return nil }
