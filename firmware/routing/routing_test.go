package routing

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/firmware/bfd"
	"github.com/shoestring-dns/shoestring/firmware/config"
)

// memMeta is the store's meta in memory.
type memMeta map[string][]byte

func (m memMeta) GetMeta(bucket, key string) ([]byte, error) {
	b, ok := m[bucket+"/"+key]
	if !ok {
		return nil, errors.New("not found")
	}
	return b, nil
}

func (m memMeta) PutMeta(bucket, key string, val []byte) error {
	m[bucket+"/"+key] = val
	return nil
}

type fakeDNS struct{}

func (fakeDNS) Addrs() []string        { return []string{"0.0.0.0:5353", "[::]:5353", "192.0.2.53:53"} }
func (fakeDNS) ExpiredZones() []string { return nil }

func TestLocalTarget(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:5353":  "127.0.0.1:5353",
		"[::]:53":       "[::1]:53",
		"192.0.2.53:53": "192.0.2.53:53",
	} {
		if got := localTarget(netip.MustParseAddrPort(in)).String(); got != want {
			t.Errorf("localTarget(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestBFDListen(t *testing.T) {
	v4 := bfd.SessionConfig{Peer: netip.MustParseAddr("192.0.2.1")}
	v6 := bfd.SessionConfig{Peer: netip.MustParseAddr("2001:db8::1")}
	if got := bfdListen([]bfd.SessionConfig{v4}); !slices.Equal(got, []string{"0.0.0.0:3784"}) {
		t.Errorf("v4 only: %v", got)
	}
	if got := bfdListen([]bfd.SessionConfig{v6, v4}); len(got) != 2 {
		t.Errorf("both: %v", got)
	}
}

// TestDrainedKept: an operator's drain goes to the store's meta and is
// read back at the next start; an unreadable entry is ignored.
func TestDrainedKept(t *testing.T) {
	cfg := &config.Config{DataDir: t.TempDir()}
	cfg.SetDefaults()
	meta := memMeta{}
	r := New(cfg, meta, slog.New(slog.DiscardHandler))
	if err := r.Maintain(true, netip.Prefix{}); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("maintain before start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.Start(ctx, fakeDNS{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Maintain(true, netip.Prefix{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := meta[metaBucket+"/"+metaDrained]; !ok {
		t.Fatal("drain not kept in meta")
	}
	if ok, why := r.Announcing(); !ok {
		t.Errorf("announcing without BGP: %s", why)
	}
	if r.Sessions() != nil || r.BFD() != nil {
		t.Error("sessions without BGP")
	}
	if _, ok := r.Network(); ok {
		t.Error("network without a network section")
	}

	meta[metaBucket+"/"+metaDrained] = []byte(`["192.0.2.0/24","2001:db8::/48"]`)
	if got := r.loadDrained(); len(got) != 2 || got[0] != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("loaded %v", got)
	}
	meta[metaBucket+"/"+metaDrained] = []byte(`{garbage`)
	if got := r.loadDrained(); got != nil {
		t.Errorf("garbage loaded as %v", got)
	}
}

// TestHealthConfig: liveness queries go to every DNS address, a wildcard
// one as loopback.
func TestHealthConfig(t *testing.T) {
	cfg := &config.Config{DataDir: t.TempDir()}
	cfg.SetDefaults()
	hc, err := healthConfig(cfg, fakeDNS{}.Addrs(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range hc.Liveness {
		got = append(got, l.String())
	}
	if want := []string{"127.0.0.1:5353", "[::1]:5353", "192.0.2.53:53"}; !slices.Equal(got, want) {
		t.Errorf("liveness %v, want %v", got, want)
	}
}
