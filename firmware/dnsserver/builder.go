package dnsserver

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"unsafe"

	"github.com/miekg/dns"
)

// Builder builds a snapshot from records in wire form, one at a time, so
// that a zone never has to be held as dns.RR values to be served: the
// store hands over its RRsets as it reads them, and the record data goes
// straight into the snapshot's arena. Build feeds it from a zone.Zone.
//
// Records may come in any order; records of one RRset keep the order they
// came in. When they come grouped by RRset (as the store reads them), the
// arena they were written to is the snapshot's, with no second copy.
type Builder struct {
	z    *Zone
	ents []buildEnt
	// NSEC3 records and their signatures go in the arena but not the
	// name tree: chain has an entry for each owner (more for an owner
	// whose records came apart, which Finish puts together), chainEnd
	// where the last entry's records and its signatures end.
	chain    []nsec3Entry
	chainEnd [2]uint32
	// The hash parameters of the apex's NSEC3PARAM and of the first
	// NSEC3 record: the chain's is the first of these there is.
	nsec3Param, firstNSEC3 nsec3Params
	key                    []byte // scratch: a lower-cased owner
	// The last record's owner as given and its node: records come
	// grouped by owner (the store's order), so most need no lookup.
	lastOwner []byte
	lastNode  int32
	// lastParent is the parent of the last new name, known to have a
	// node: siblings come one after another, and most names of a big
	// zone are siblings under the apex.
	lastParent string
	names      []byte // the chunk node names are allocated from
	err        error
}

// nameChunk is the size of the blocks node names are kept in.
const nameChunk = 64 << 10

// intern returns w as a string in the builder's name chunks: one
// allocation per 64 KiB of names rather than one per name. The bytes are
// never written again once a string refers to them.
func (b *Builder) intern(w []byte) string {
	if cap(b.names)-len(b.names) < len(w) {
		// A small zone (of 10,000 at boot) gets a small first block.
		size := nameChunk
		if b.names == nil {
			size = min(nameChunk, max(256, 32*cap(b.ents)))
		}
		b.names = make([]byte, 0, max(size, len(w)))
	}
	start := len(b.names)
	b.names = append(b.names, w...)
	return unsafe.String(&b.names[start], len(w))
}

// buildEnt is one record in the arena on its way into an RRset.
type buildEnt struct {
	node int32
	t    uint16 // the type, or the type covered for a signature
	sig  bool
	off  uint32 // TTL(4) RDLENGTH(2) RDATA in the arena
}

// NewBuilder starts a snapshot of the zone origin; records, when known,
// sizes its tables.
func NewBuilder(origin string, records int) (*Builder, error) {
	return NewBuilderSized(origin, Size{Records: records, Names: records / 2})
}

// Size is what a snapshot will hold, counted by a first pass over its
// records (Size.Add, with what Builder.Add will be given), so that
// NewBuilderSized makes each of the snapshot's large tables once, at
// its final size: grown by append instead, a big zone's arena is copied
// each time it doubles and once more when the pre-packed answers are
// added, and each old copy stays in the process's memory until the
// runtime hands it back — the peak of a big zone's load.
type Size struct {
	Records int
	Names   int // owner names (an upper bound: one per change of owner)
	Data    int // arena bytes of the records
	Fast    int // arena bytes of the pre-packed address answers
	// NameBytes is the owner names' length (wire form), an upper
	// bound like Names.
	NameBytes int
	// NSEC3 and NSEC3Sigs count the NSEC3 records and the RRSIGs over
	// them (among Records): their data is in the arena (Data), but
	// they are no names or RRsets of the tree; the chain has an entry
	// for each owner, one NSEC3 record.
	NSEC3, NSEC3Sigs int
	owner            []byte
	t                uint16
}

// Add counts one record.
func (s *Size) Add(owner []byte, t uint16, rdata []byte) {
	s.Records++
	s.Data += 6 + len(rdata)
	switch {
	case t == dns.TypeNSEC3:
		s.NSEC3++
		return
	case t == dns.TypeRRSIG && len(rdata) >= 2 && binary.BigEndian.Uint16(rdata) == dns.TypeNSEC3:
		s.NSEC3Sigs++
		return
	}
	newOwner := !bytes.Equal(owner, s.owner)
	if newOwner {
		s.Names++
		s.NameBytes += len(owner)
		s.owner = append(s.owner[:0], owner...)
	}
	if t == dns.TypeA || t == dns.TypeAAAA {
		if newOwner || t != s.t {
			s.Fast += fastHdr
		}
		s.Fast += 12 + len(rdata)
	}
	s.t = t
}

// Bytes is about what a snapshot of this size takes while it is built:
// its arena, names, nodes, RRsets, NSEC3 chain and index, and the
// build's scratch (freed once it is done). It is what the memory budget (dns.memory_limit) weighs a stored zone by at
// boot, a little over what the build allocates (TestSizeBytes).
func (s Size) Bytes() int64 {
	names := int64(s.Names + s.Names/64 + 1)
	arena := int64(s.Data + s.Fast + s.Fast/16 + s.Data/64 + 4096)
	index := int64(indexSlots(int(names))) * 8
	n := arena + int64(s.NameBytes) + names*int64(unsafe.Sizeof(node{})) + index +
		int64(s.treeRecords())*int64(unsafe.Sizeof(rrset{})+unsafe.Sizeof(buildEnt{})) +
		int64(s.NSEC3)*int64(unsafe.Sizeof(nsec3Entry{}))
	return n + n/8 // the odd table this leaves out; rather over than under
}

// treeRecords is how many records go in the name tree: all but the
// NSEC3 chain's.
func (s Size) treeRecords() int { return s.Records - s.NSEC3 - s.NSEC3Sigs }

// NewBuilderSized starts a snapshot of the zone origin whose tables are
// made the size the zone needs (see Size).
func NewBuilderSized(origin string, size Size) (*Builder, error) {
	apex, err := wireName(origin)
	if err != nil {
		return nil, fmt.Errorf("zone %s: bad origin: %w", origin, err)
	}
	names := size.Names + size.Names/64 + 1 // and a few empty non-terminals
	// The arena first, the largest table: the heap's first free run it
	// fits in is most often what a big import just freed (see
	// store.Import.Expect), before smaller tables split that run. It
	// holds the records, then the pre-packed answers: precompute grows
	// the arena by its address answers and a sixteenth more for the
	// rest (growForAddresses); room for that here means it never moves.
	var arena []byte
	if size.Data > 0 {
		arena = make([]byte, 0, size.Data+size.Fast+size.Fast/16+size.Data/64+4096)
	}
	b := &Builder{
		z: &Zone{
			origin: presentation(apex),
			apex:   apex,
			index:  newNameIndex(names),
			nodes:  make([]node, 0, names),
		},
		ents:  make([]buildEnt, 0, size.treeRecords()),
		chain: make([]nsec3Entry, 0, size.NSEC3),
		key:   make([]byte, 0, 256),
	}
	b.z.arena = arena
	return b, nil
}

// Add adds one record: owner in uncompressed wire form (any case), type,
// TTL and RDATA with names uncompressed, as dns.PackRR writes them
// without compression. The slices are not retained. The first error is
// kept and returned by Finish.
func (b *Builder) Add(owner []byte, t uint16, ttl uint32, rdata []byte) {
	if b.err != nil {
		return
	}
	z := b.z
	z.nrecords++
	if len(rdata) > 0xFFFF {
		b.err = fmt.Errorf("zone %s: record data too long", z.origin)
		return
	}
	switch t {
	case dns.TypeNSEC3:
		b.addNSEC3(owner, false, ttl, rdata)
		return
	case dns.TypeNSEC3PARAM:
		b.noteNSEC3PARAM(owner, rdata)
	case dns.TypeRRSIG:
		if len(rdata) < 2 {
			b.err = fmt.Errorf("zone %s: short RRSIG", z.origin)
			return
		}
		if binary.BigEndian.Uint16(rdata) == dns.TypeNSEC3 {
			b.addNSEC3(owner, true, ttl, rdata)
			return
		}
	}
	idx, ok := b.lastNode, b.lastOwner != nil && bytes.Equal(owner, b.lastOwner)
	if !ok {
		b.key = append(b.key[:0], owner...)
		lower(b.key)
		if idx, ok = z.findBytes(b.key); !ok {
			if !isBelow(string(b.key), z.apex) && string(b.key) != z.apex {
				b.err = fmt.Errorf("zone %s: %s is outside the zone", z.origin, presentation(string(b.key)))
				return
			}
			w := b.intern(b.key)
			idx = z.addNode(w)
			if w != z.apex && parentName(w) != b.lastParent {
				for p := w; p != z.apex; {
					p = parentName(p) // a suffix of w: no new name to keep
					if _, ok := z.find(p); ok {
						break
					}
					z.addNode(p)
				}
				b.lastParent = parentName(w)
			}
		}
		b.lastOwner = append(b.lastOwner[:0], owner...)
		b.lastNode = idx
	}
	e := buildEnt{node: idx, t: t, off: uint32(len(z.arena))}
	if t == dns.TypeRRSIG {
		e.t, e.sig = binary.BigEndian.Uint16(rdata), true
		z.signed = true
	}
	b.ents = append(b.ents, e)
	z.arena = appendRecord(z.arena, ttl, rdata)
}

// appendRecord appends a record to the arena as it keeps them: TTL(4)
// RDLENGTH(2) RDATA.
func appendRecord(arena []byte, ttl uint32, rdata []byte) []byte {
	arena = binary.BigEndian.AppendUint32(arena, ttl)
	arena = binary.BigEndian.AppendUint16(arena, uint16(len(rdata)))
	return append(arena, rdata...)
}

// Finish indexes what was added and returns the snapshot; the Builder
// must not be used after.
func (b *Builder) Finish() (*Zone, error) {
	if b.err != nil {
		return nil, b.err
	}
	z := b.z
	ents := b.ents
	b.ents = nil
	cmpEnt := func(a, b buildEnt) int {
		switch {
		case a.node != b.node:
			return int(a.node - b.node)
		case a.t != b.t:
			return int(a.t) - int(b.t)
		case a.sig != b.sig:
			if a.sig {
				return 1
			}
			return -1
		}
		return int(a.off) - int(b.off) // arrival order
	}
	// Grouped input (the store's) only needs its RRsets found; anything
	// else is sorted and copied into a new arena in RRset order, so that
	// each RRset's records (and signatures) are contiguous, and so is
	// each NSEC3 owner's (with only the records of the chain's
	// parameters).
	params := b.chainParams()
	if tidy := b.sortChain(params); !tidy || !groupedEnts(ents, len(z.nodes)) {
		slices.SortFunc(ents, cmpEnt)
		old := z.arena
		z.arena = make([]byte, 0, cap(old)) // sized for precompute too
		for i := range ents {
			off := ents[i].off
			n := 6 + int(binary.BigEndian.Uint16(old[off+4:]))
			ents[i].off = uint32(len(z.arena))
			z.arena = append(z.arena, old[off:int(off)+n]...)
		}
		b.regroupChain(old, params)
	}
	// Every RRset goes in one slice, each node's a window of it: nodes
	// come in any order, so first count each node's RRsets.
	counts := make([]int32, len(z.nodes))
	for i := range ents {
		if i == 0 || ents[i].node != ents[i-1].node || ents[i].t != ents[i-1].t {
			counts[ents[i].node]++
		}
	}
	total := 0
	for _, c := range counts {
		total += int(c)
	}
	allSets := make([]rrset, total)
	start := 0
	for i, c := range counts {
		z.nodes[i].sets = allSets[start : start : start+int(c)]
		start += int(c)
	}
	counts = nil
	for i := 0; i < len(ents); {
		j := i
		for j < len(ents) && ents[j].node == ents[i].node && ents[j].t == ents[i].t {
			j++
		}
		n := &z.nodes[ents[i].node]
		s := rrset{t: ents[i].t, off: ents[i].off}
		for _, e := range ents[i:j] {
			if e.sig {
				if s.sigN == 0 {
					s.sigOff = e.off
				}
				s.sigN++
			} else {
				s.n++
			}
		}
		n.sets = append(n.sets, s) // within its window: no allocation
		i = j
	}
	ents = nil
	return z.finish(b.chain, params)
}

// groupedEnts reports whether the entries are already in RRset order
// apart from the order of the nodes: each node's entries together, its
// types ascending, each type's records before its signatures. Their
// arena is then in that order too (entries are in arena order).
func groupedEnts(ents []buildEnt, nodes int) bool {
	seen := make([]bool, nodes)
	for i := range ents {
		c := ents[i]
		if i == 0 || ents[i-1].node != c.node {
			if seen[c.node] {
				return false
			}
			seen[c.node] = true
			continue
		}
		a := ents[i-1]
		if c.t < a.t || (c.t == a.t && a.sig && !c.sig) {
			return false
		}
	}
	return true
}
