package secondary

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/xfr"
	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// outcome is a refresh that reached a primary and ended well: our data
// is confirmed current, or was replaced by a newer version.
type outcome struct {
	primary       xfr.Remote
	primarySerial uint32
	kind          xfr.Kind // "" when only the SOA was checked
	changed       bool
	note          string
	warn          bool // the note is worth a warning (primary behind us)
}

// refresh runs one refresh of z: each primary in turn (the one that
// sent a NOTIFY first) until one confirms our version or gives us a newer
// one. Whatever happens, the old version keeps being served unless a
// complete, valid, newer one replaced it.
func (m *Manager) refresh(z *zoneRun, force bool, prefer netip.Addr) {
	m.mu.Lock()
	prims := append([]xfr.Remote(nil), z.primaries...)
	if prefer.IsValid() {
		for i, p := range prims {
			if m.addrOfLocked(p) == prefer && i > 0 {
				prims = append([]xfr.Remote{p}, append(prims[:i:i], prims[i+1:]...)...)
				break
			}
		}
	}
	m.mu.Unlock()
	have := m.b.SOA(z.origin)
	var errs []string
	var got, behind *outcome
	rejected := 0
	for _, p := range prims {
		if z.ctx.Err() != nil {
			return // removed or shutting down
		}
		o, err := m.fromPrimary(z, p, have, force)
		if err != nil {
			if z.ctx.Err() != nil {
				return
			}
			var rj *rejection
			var le *xfr.LimitError
			if errors.As(err, &rj) || errors.As(err, &le) {
				rejected++
			}
			errs = append(errs, err.Error())
			m.log.Warn("secondary: refresh from primary failed; the current version keeps serving", "zone", z.origin, "primary", p.String(), "err", err)
			continue
		}
		if o.warn {
			// A primary behind us: another may be ahead; if none is,
			// this still confirms the zone (as Knot does).
			behind = o
			m.log.Warn("secondary: "+o.note, "zone", z.origin, "primary", p.String())
			continue
		}
		got = o
		break
	}
	if got == nil {
		got = behind
	}
	m.finish(z, got, errs, rejected)
}

// rejection is a transfer that arrived and was refused (bad data, limits,
// serial going backwards), as opposed to one that never completed.
type rejection struct{ err error }

func (r *rejection) Error() string { return r.err.Error() }
func (r *rejection) Unwrap() error { return r.err }

func (m *Manager) fromPrimary(z *zoneRun, p xfr.Remote, have *dns.SOA, force bool) (*outcome, error) {
	if have == nil || force {
		return m.axfr(z, p, have, force)
	}
	soa, err := m.client.SOA(z.ctx, p, z.origin)
	var rc *xfr.RcodeError
	if errors.As(err, &rc) {
		// Some primaries answer no queries for zones they only hand out
		// (Knot for the catalogs it generates). An IXFR tells as much:
		// a lone SOA when we are current.
		m.log.Debug("secondary: SOA query refused; asking by IXFR", "zone", z.origin, "primary", p.String(), "answer", dns.RcodeToString[rc.Rcode])
		return m.ixfr(z, p, have)
	}
	if err != nil {
		return nil, err
	}
	switch xfr.SerialCompare(soa.Serial, have.Serial) {
	case 0:
		return &outcome{primary: p, primarySerial: soa.Serial, note: fmt.Sprintf("up to date at serial %d", have.Serial)}, nil
	case -1:
		return behindOutcome(p, soa.Serial, have.Serial), nil
	}
	return m.ixfr(z, p, have)
}

func behindOutcome(p xfr.Remote, theirs, ours uint32) *outcome {
	return &outcome{primary: p, primarySerial: theirs, warn: true,
		note: fmt.Sprintf("primary %s has serial %d, behind ours %d (RFC 1982); ours kept (`ctl retransfer` takes the primary's)", p.Target(), theirs, ours)}
}

// ixfr asks for the changes since have, falling back to AXFR when the
// primary cannot do IXFR or its changes do not apply to what we hold.
func (m *Manager) ixfr(z *zoneRun, p xfr.Remote, have *dns.SOA) (*outcome, error) {
	if err := m.acquire(z.ctx); err != nil {
		return nil, err
	}
	t, err := m.b.NewTransfer(z.origin)
	if err != nil {
		m.release()
		return nil, err
	}
	defer t.Abort() // a transfer not applied (failed, up to date, rejected)
	res, err := m.client.IXFRInto(z.ctx, p, z.origin, have, t)
	m.release()
	var rc *xfr.RcodeError
	if errors.As(err, &rc) && (rc.Rcode == dns.RcodeNotImplemented || rc.Rcode == dns.RcodeFormatError || rc.Rcode == dns.RcodeRefused) {
		m.log.Info("secondary: primary does not do IXFR; AXFR instead", "zone", z.origin, "primary", p.String(), "answer", dns.RcodeToString[rc.Rcode])
		return m.axfr(z, p, have, false)
	}
	if err != nil {
		return nil, err
	}
	switch res.Kind {
	case xfr.KindUpToDate:
		if xfr.SerialNewer(have.Serial, res.SOA.Serial) {
			return behindOutcome(p, res.SOA.Serial, have.Serial), nil
		}
		return &outcome{primary: p, primarySerial: res.SOA.Serial, note: fmt.Sprintf("up to date at serial %d", have.Serial)}, nil
	case xfr.KindAXFR:
		return m.applyAXFR(z, p, res, t, have, false)
	}
	if !xfr.SerialNewer(res.SOA.Serial, have.Serial) {
		return nil, &rejection{fmt.Errorf("IXFR from %s goes to serial %d, not newer than ours %d; rejected", p.Target(), res.SOA.Serial, have.Serial)}
	}
	if err := m.apply(z, func() error { return m.b.ApplyDeltas(z.origin, res.Deltas) }); err != nil {
		if z.ctx.Err() != nil {
			return nil, err
		}
		// A journal that does not match what we hold is the primary's or
		// ours to sort out; a full transfer is always right.
		m.log.Warn("secondary: IXFR does not apply; AXFR instead", "zone", z.origin, "primary", p.String(), "err", firstLine(err))
		return m.axfr(z, p, have, false)
	}
	m.log.Info("secondary: zone updated", "zone", z.origin, "type", "IXFR", "primary", p.String(),
		"serial", fmt.Sprintf("%d→%d", have.Serial, res.SOA.Serial), "changes", len(res.Deltas), "records", res.Changes(),
		"took", res.Took.Round(time.Millisecond))
	return &outcome{primary: p, primarySerial: res.SOA.Serial, kind: xfr.KindIXFR, changed: true,
		note: fmt.Sprintf("IXFR %d→%d, %d records changed", have.Serial, res.SOA.Serial, res.Changes())}, nil
}

func (m *Manager) axfr(z *zoneRun, p xfr.Remote, have *dns.SOA, force bool) (*outcome, error) {
	if err := m.acquire(z.ctx); err != nil {
		return nil, err
	}
	t, err := m.b.NewTransfer(z.origin)
	if err != nil {
		m.release()
		return nil, err
	}
	defer t.Abort() // a transfer not applied (failed, up to date, rejected)
	res, err := m.client.AXFRInto(z.ctx, p, z.origin, t)
	m.release()
	if err != nil {
		return nil, err
	}
	return m.applyAXFR(z, p, res, t, have, force)
}

// applyAXFR applies a zone transferred whole, whose records went into t.
func (m *Manager) applyAXFR(z *zoneRun, p xfr.Remote, res *xfr.Result, t Transfer, have *dns.SOA, force bool) (*outcome, error) {
	if have != nil && !force && !xfr.SerialNewer(res.SOA.Serial, have.Serial) {
		return nil, &rejection{fmt.Errorf("AXFR from %s has serial %d, not newer than ours %d (serial going backwards); rejected", p.Target(), res.SOA.Serial, have.Serial)}
	}
	n := res.Count
	err := m.apply(z, func() error { return m.b.PutTransfer(t) })
	if err != nil {
		return nil, &rejection{fmt.Errorf("AXFR from %s (serial %d, %d records) rejected: %s", p.Target(), res.SOA.Serial, n, summarize(err))}
	}
	from := "none"
	if have != nil {
		from = fmt.Sprint(have.Serial)
	}
	m.log.Info("secondary: zone updated", "zone", z.origin, "type", "AXFR", "primary", p.String(),
		"serial", fmt.Sprintf("%s→%d", from, res.SOA.Serial), "records", n, "messages", res.Messages,
		"bytes", res.Bytes, "took", res.Took.Round(time.Millisecond))
	return &outcome{primary: p, primarySerial: res.SOA.Serial, kind: xfr.KindAXFR, changed: true,
		note: fmt.Sprintf("AXFR serial %d, %d records", res.SOA.Serial, n)}, nil
}

// apply writes data unless the zone was removed meanwhile.
func (m *Manager) apply(z *zoneRun, write func() error) error {
	z.applyMu.Lock()
	defer z.applyMu.Unlock()
	if z.ctx.Err() != nil {
		return z.ctx.Err()
	}
	return write()
}

// finish records a refresh's result and arms the next timers.
func (m *Manager) finish(z *zoneRun, o *outcome, errs []string, rejected int) {
	now := time.Now()
	soa := m.b.SOA(z.origin)
	m.mu.Lock()
	if z.removed || m.closed {
		m.mu.Unlock()
		return
	}
	st := &z.st
	st.LastAttempt = now
	st.Rejected += uint64(rejected)
	st.LastError = strings.Join(errs, "; ")
	if o != nil {
		st.LastSuccess = now
		st.Primary = o.primary.String()
		st.PrimarySerial, st.HavePrimarySerial = o.primarySerial, true
		st.LastResult = o.note
		st.Failures = 0
		switch o.kind {
		case xfr.KindAXFR:
			st.AXFRs++
			st.LastTransfer = now
		case xfr.KindIXFR:
			st.IXFRs++
			st.LastTransfer = now
		}
		if soa != nil {
			st.ExpiresAt = now.Add(m.expire(soa))
			m.armLocked(z, m.refreshInterval(soa))
		}
		if st.Expired {
			st.Expired = false
			m.log.Info("secondary: zone refreshed; no longer expired", "zone", z.origin)
			m.b.SetExpired(z.origin, false, "")
		}
	} else {
		st.Failures++
		st.LastResult = "failed"
		if len(errs) == 0 {
			st.LastError = "no primaries answered"
		}
		if soa != nil && st.ExpiresAt.IsZero() {
			st.ExpiresAt = now.Add(m.expire(soa))
		}
		m.armLocked(z, m.retryInterval(soa, st.Failures))
		if soa != nil && !now.Before(st.ExpiresAt) {
			m.expireLocked(z, "no primary confirmed the zone within its SOA expire time")
		}
	}
	m.armExpiryLocked(z)
	isCatalog := z.kind == "catalog"
	m.mu.Unlock()
	m.persist(z)
	if isCatalog && o != nil && o.changed {
		m.reconcile(z.origin)
	}
}

// summarize shortens a validation error list for status lines.
func summarize(err error) string {
	var list zone.ErrorList
	if errors.As(err, &list) && len(list) > 3 {
		parts := make([]string, 0, 4)
		for _, e := range list[:3] {
			parts = append(parts, e.Error())
		}
		return strings.Join(parts, "; ") + fmt.Sprintf("; and %d more", len(list)-3)
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
