package secondary

import (
	"encoding/json"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// State is a zone's transfer state, persisted so that a rebooted node
// keeps its refresh schedule and expiry deadline.
type State struct {
	Primary           string    `json:"primary,omitempty"` // the primary that last answered
	PrimarySerial     uint32    `json:"primary_serial,omitempty"`
	HavePrimarySerial bool      `json:"have_primary_serial,omitempty"`
	LastAttempt       time.Time `json:"last_attempt,omitzero"`
	LastSuccess       time.Time `json:"last_success,omitzero"` // a primary confirmed our version or sent a newer one
	LastTransfer      time.Time `json:"last_transfer,omitzero"`
	LastResult        string    `json:"last_result,omitempty"`
	LastError         string    `json:"last_error,omitempty"`
	Failures          int       `json:"failures,omitempty"` // in a row
	NextRefresh       time.Time `json:"next_refresh,omitzero"`
	ExpiresAt         time.Time `json:"expires_at,omitzero"`
	Expired           bool      `json:"expired,omitempty"`
	AXFRs             uint64    `json:"axfrs,omitempty"`
	IXFRs             uint64    `json:"ixfrs,omitempty"`
	Rejected          uint64    `json:"rejected,omitempty"` // transfers received and refused
}

// Status is a zone's state as the API shows it.
type Status struct {
	Origin     string
	Kind       string // "zone", "catalog", "member", "api"
	Catalog    string // for members
	Primaries  []string
	Serial     uint32 // here
	HasData    bool
	Refreshing bool
	State
}

// Status returns every secondary zone's status, sorted by origin.
func (m *Manager) Status() []Status {
	var out []Status
	for _, o := range m.Origins() {
		if s, ok := m.ZoneStatus(o); ok {
			out = append(out, s)
		}
	}
	return out
}

// ZoneStatus returns one zone's status.
func (m *Manager) ZoneStatus(origin string) (Status, bool) {
	origin = zone.Canonical(origin)
	m.mu.Lock()
	z := m.zones[origin]
	if z == nil {
		m.mu.Unlock()
		return Status{}, false
	}
	s := Status{Origin: origin, Kind: z.kind, Catalog: z.catalog, State: z.st, Refreshing: z.running}
	for _, p := range z.primaries {
		s.Primaries = append(s.Primaries, p.String())
	}
	m.mu.Unlock()
	if soa := m.b.SOA(origin); soa != nil {
		s.Serial, s.HasData = soa.Serial, true
	}
	return s, true
}

// persist saves a zone's state when it says something new. Routine
// successful checks rewrite it only every few minutes (or a tenth of the
// expire time, whichever is shorter), to spare the SD card; the deadline
// persisted then errs early, never late.
func (m *Manager) persist(z *zoneRun) {
	m.mu.Lock()
	if z.removed {
		m.mu.Unlock()
		return
	}
	st, saved := z.st, z.saved
	soa := m.b.SOA(z.origin)
	window := 5 * time.Minute
	if soa != nil {
		window = min(window, m.expire(soa)/10)
	}
	routine := func(s State) State {
		s.LastAttempt, s.LastSuccess, s.NextRefresh, s.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		return s
	}
	if routine(st) == routine(saved) && st.LastSuccess.Sub(saved.LastSuccess) < window && st.ExpiresAt.Sub(saved.ExpiresAt) < window {
		m.mu.Unlock()
		return
	}
	z.saved = st
	m.mu.Unlock()
	b, err := json.Marshal(st)
	if err == nil {
		err = m.b.SaveState(z.origin, b)
	}
	if err != nil {
		m.log.Warn("secondary: saving transfer state", "zone", z.origin, "err", err)
	}
}
