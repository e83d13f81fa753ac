package bfd

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// Defaults for zero-valued session timers, the config document's
// (package config owns them): 300 ms × 3 detects a dead neighbour within
// a second, cheaply enough for a small box.
const (
	DefaultMinTx      = config.DefaultBFDInterval
	DefaultMinRx      = config.DefaultBFDInterval
	DefaultDetectMult = config.DefaultBFDMultiplier
)

// Config is the BFD speaker: where it listens and its sessions.
type Config struct {
	// ListenAddrs are the UDP addresses to receive Control packets on;
	// default "0.0.0.0:3784" and "[::]:3784". Tests use other ports.
	ListenAddrs []string
	Sessions    []SessionConfig
	// OnChange is called, from the session's goroutine, on every state
	// change; it must not block. A session that leaves Up with any Diag but
	// DiagNeighborSignaledDown from an AdminDown neighbour (Event.Remote ==
	// AdminDown) means the path failed; RFC 5882 section 3.2 asks clients
	// not to treat the administrative case as a failure.
	OnChange func(Event)
}

// SessionConfig is one single-hop session.
type SessionConfig struct {
	// Name identifies the session in logs and status; defaults to Peer.
	Name string
	// Peer is the neighbour; packets from other sources never reach the
	// session.
	Peer netip.Addr
	// Local is the source address (optional: the kernel picks one).
	Local netip.Addr
	// Interface, if set, binds the session's socket to that link, as a
	// link-local Peer needs.
	Interface string
	// DesiredMinTx and RequiredMinRx are the intervals we offer to send at
	// and accept to receive at; DetectMult is how many missed packets the
	// neighbour may assume make us dead.
	DesiredMinTx, RequiredMinRx time.Duration
	DetectMult                  uint8
	// Port is the neighbour's UDP port (default 3784; only tests change
	// it).
	Port int
}

// Event is a session state change.
type Event struct {
	Name     string
	Peer     netip.Addr
	From, To State
	// Diag is our reason for the change; Remote is the neighbour's last
	// reported state.
	Diag   Diag
	Remote State
	At     time.Time
}

func (cfg Config) normalize() (Config, error) {
	out := cfg
	if len(out.ListenAddrs) == 0 {
		out.ListenAddrs = []string{"0.0.0.0:3784", "[::]:3784"}
	}
	out.Sessions = make([]SessionConfig, len(cfg.Sessions))
	seen := map[netip.Addr]bool{}
	for i, s := range cfg.Sessions {
		if !s.Peer.IsValid() {
			return cfg, fmt.Errorf("bfd: session %d: peer address missing", i)
		}
		s.Peer = s.Peer.Unmap()
		if seen[s.Peer] {
			// Packets without our discriminator are matched by source
			// address, so one neighbour can have only one session.
			return cfg, fmt.Errorf("bfd: two sessions for %v", s.Peer)
		}
		seen[s.Peer] = true
		if s.Name == "" {
			s.Name = s.Peer.String()
		}
		if s.Local.IsValid() {
			s.Local = s.Local.Unmap()
			if s.Local.Is4() != s.Peer.Is4() {
				return cfg, fmt.Errorf("bfd: session %s: local %v and peer differ in family", s.Name, s.Local)
			}
		}
		if s.DesiredMinTx == 0 {
			s.DesiredMinTx = DefaultMinTx
		}
		if s.RequiredMinRx == 0 {
			s.RequiredMinRx = DefaultMinRx
		}
		if s.DetectMult == 0 {
			s.DetectMult = DefaultDetectMult
		}
		if s.DesiredMinTx < time.Millisecond || s.RequiredMinRx < time.Millisecond {
			return cfg, fmt.Errorf("bfd: session %s: intervals below 1 ms", s.Name)
		}
		if s.Port == 0 {
			s.Port = ControlPort
		}
		if s.Port < 1 || s.Port > 65535 {
			return cfg, errors.New("bfd: port out of range")
		}
		out.Sessions[i] = s
	}
	return out, nil
}
