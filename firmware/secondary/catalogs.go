package secondary

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/shoestring-dns/shoestring/firmware/catalog"
	"github.com/shoestring-dns/shoestring/firmware/xfr"
)

// memberInfo is which catalog owns a member zone, persisted: ownership
// can move between catalogs (coo), so it is history, not just content.
type memberInfo struct {
	Catalog string   `json:"catalog"`
	ID      string   `json:"id"`
	Groups  []string `json:"groups,omitempty"`
}

// catalogState is what the last reading of a catalog found.
type catalogState struct {
	Serial   uint32
	Members  []string
	Problems []string
	Error    string
	coo      map[string]string // member → catalog it may move to
	// conflicts are members this catalog lists that another one owns.
	conflicts map[string]string // member → owning catalog
}

// CatalogStatus is a consumed catalog as the API shows it.
type CatalogStatus struct {
	Origin   string
	Serial   uint32
	Members  []string
	Problems []string
	Error    string
}

// Catalogs returns the consumed catalogs' status.
func (m *Manager) Catalogs() []CatalogStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []CatalogStatus
	for o, cs := range m.catState {
		out = append(out, CatalogStatus{Origin: o, Serial: cs.Serial, Members: slices.Clone(cs.Members),
			Problems: slices.Clone(cs.Problems), Error: cs.Error})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out
}

// primariesFor picks a member's primaries: its first group that the
// config maps, else the catalog's member template, else the catalog's own
// primaries (the usual setup: one primary serves catalog and members).
func primariesFor(c *CatalogConfig, groups []string) []xfr.Remote {
	for _, g := range groups {
		if p, ok := c.Groups[g]; ok {
			return p
		}
	}
	if len(c.Members) > 0 {
		return c.Members
	}
	return c.Primaries
}

// reconcile reads a catalog zone from the store and makes the member
// zones match it: new members are added and transferred at once, members
// gone from the catalog are removed (and answer REFUSED), members whose
// unique ID changed are reset (data dropped, transferred afresh, RFC 9432
// §5.1), and a member owned by another catalog moves only when that
// catalog's coo property points here (§5.2.2). A catalog that does not
// parse changes nothing.
func (m *Manager) reconcile(origin string) { m.reconcileFrom(origin, true) }

// reconcileFrom is reconcile; retry says whether catalogs waiting on this
// one's coo are read again (once: two catalogs pointing their coo at each
// other must not bounce a member back and forth forever).
func (m *Manager) reconcileFrom(origin string, retryOthers bool) {
	zn, err := m.b.Zone(origin)
	var cat *catalog.Catalog
	if err == nil {
		cat, err = catalog.Parse(zn)
	}
	srcs, serr := m.b.Sources()
	if serr != nil {
		srcs = map[string]string{}
	}
	m.mu.Lock()
	cfg, cs := m.catalogs[origin], m.catState[origin]
	if cfg == nil || m.closed {
		m.mu.Unlock()
		return
	}
	if err != nil {
		cs.Error = err.Error()
		m.mu.Unlock()
		m.log.Error("secondary: catalog unusable; its members stay as they are", "catalog", origin, "err", err)
		return
	}
	cs.Serial, cs.Error, cs.Problems = cat.Serial, "", slices.Clone(cat.Problems)
	cs.coo, cs.conflicts = map[string]string{}, map[string]string{}
	cs.Members = cs.Members[:0]
	// Catalogs waiting for this one's coo to take over a member: read
	// again once this one is read, whichever NOTIFY came first.
	var retry []string

	var added, removed, reset []*zoneRun
	for name, mem := range cat.Members {
		if mem.COO != "" {
			cs.coo[name] = mem.COO
			if t := m.catState[mem.COO]; t != nil && mem.COO != origin && t.conflicts[name] == origin {
				retry = append(retry, mem.COO)
			}
		}
		mi, owned := m.members[name]
		z := m.zones[name]
		switch {
		case owned && mi.Catalog == origin:
			cs.Members = append(cs.Members, name)
			if z == nil {
				z = m.addLocked(name, primariesFor(cfg, mem.Groups), "member", origin)
				added = append(added, z)
			}
			if mi.ID != mem.ID {
				m.log.Info("secondary: catalog member's unique ID changed; resetting the zone", "catalog", origin, "zone", name, "old_id", mi.ID, "new_id", mem.ID)
				reset = append(reset, z)
			} else if !slices.Equal(mi.Groups, mem.Groups) {
				z.primaries = primariesFor(cfg, mem.Groups)
			}
			m.members[name] = memberInfo{Catalog: origin, ID: mem.ID, Groups: mem.Groups}
		case owned:
			other := m.catState[mi.Catalog]
			if other == nil || other.coo[name] != origin {
				cs.Problems = append(cs.Problems, fmt.Sprintf("%s is a member of catalog %s, which has no coo property pointing here; ignored", name, mi.Catalog))
				cs.conflicts[name] = mi.Catalog
				continue
			}
			m.log.Info("secondary: catalog member changes ownership (coo)", "zone", name, "from", mi.Catalog, "to", origin)
			cs.Members = append(cs.Members, name)
			if z == nil {
				z = m.addLocked(name, primariesFor(cfg, mem.Groups), "member", origin)
				added = append(added, z)
			}
			z.catalog, z.primaries = origin, primariesFor(cfg, mem.Groups)
			if mi.ID != mem.ID {
				reset = append(reset, z)
			}
			m.members[name] = memberInfo{Catalog: origin, ID: mem.ID, Groups: mem.Groups}
		case z != nil:
			cs.Problems = append(cs.Problems, fmt.Sprintf("%s is configured on this node (%s); the catalog entry is ignored", name, z.kind))
		case srcs[name] != "" && srcs[name] != "transfer":
			cs.Problems = append(cs.Problems, fmt.Sprintf("%s is served here from %s; the catalog entry is ignored", name, srcs[name]))
		default:
			cs.Members = append(cs.Members, name)
			m.members[name] = memberInfo{Catalog: origin, ID: mem.ID, Groups: mem.Groups}
			added = append(added, m.addLocked(name, primariesFor(cfg, mem.Groups), "member", origin))
			m.log.Info("secondary: catalog member added", "catalog", origin, "zone", name)
		}
	}
	sort.Strings(cs.Members)
	for name, mi := range m.members {
		if mi.Catalog != origin {
			continue
		}
		if _, still := cat.Members[name]; still {
			continue
		}
		delete(m.members, name)
		if z := m.zones[name]; z != nil && z.kind == "member" {
			removed = append(removed, z)
		}
	}
	b, _ := json.Marshal(m.members)
	for _, z := range added {
		if !slices.Contains(reset, z) {
			m.startLocked(z)
		}
	}
	m.mu.Unlock()
	if err := m.b.SaveState(keyMembers, b); err != nil {
		m.log.Warn("secondary: saving catalog membership", "err", err)
	}

	for _, z := range removed {
		m.log.Info("secondary: catalog member removed", "catalog", origin, "zone", z.origin)
		m.remove(z, "no longer in catalog "+origin)
	}
	for _, z := range reset {
		m.remove(z, "reset: unique ID changed in catalog "+origin)
		m.mu.Lock()
		if !m.closed {
			nz := m.addLocked(z.origin, z.primaries, "member", origin)
			m.startLocked(nz)
		}
		m.mu.Unlock()
	}
	slices.Sort(retry)
	for _, c := range slices.Compact(retry) {
		if retryOthers {
			m.reconcileFrom(c, false)
		}
	}
}
