package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// Import is a new version of a zone on its way into the store, fed one
// record at a time (from a master file as it is parsed, or an AXFR as it
// arrives) so that a big zone is never held as dns.RR values: each record
// is checked on its own and kept only in the store's wire form, then
// Commit sorts them into RRsets, checks their placement (zone.Checker)
// and writes the RRsets that changed, in one transaction. Validation
// happens there, once. A zone that fails it changes nothing. An import
// past Options.ImportSpill does not hold all its records: it sorts them
// out in batches to a file in the store's directory and Commit merges
// them back (spill.go), so that what it holds does not grow with the
// zone.
type Import struct {
	s       *Store
	origin  string
	chk     *zone.Checker
	scratch []byte
	// block is room Expect made for the chunks to come, taken a chunk
	// at a time (see newChunk).
	block []byte
	// Records as keyLen(2) setKey owner class(2) ttl(4) rdlength(2)
	// rdata, in arrival order, in chunks (grown by append, one buffer
	// would be copied whole each time it doubled, and briefly held
	// twice); ents sorts them.
	chunks [][]byte
	nchunk int   // chunks in use by the batch (see spill.go)
	used   int64 // their bytes in use
	ents   []importEnt
	seq    int
	files  []string
	pos    []importPos // by seq - posBase, when records came with positions
	// posBase is the first seq of the batch held: those before it were
	// spilled, with their positions.
	posBase int
	// limit bounds the records' bytes as held, spilled ones counted
	// as if they were (see zones/budget.go); 0: none.
	limit int64
	// spillAt is the batch's bytes past which it is spilled
	// (Options.ImportSpill); <= 0: never.
	spillAt int64
	sp      *spill // nil until the first spill
	spilled int64  // the bytes the spilled batches took while held
	peak    int64  // the most Bytes was when measured (before spills, at Commit)
	serial  uint32
	err     error
	// visit, when set, sees every record Commit keeps (see Visit).
	visit func(owner []byte, t uint16, rdata []byte)
}

// importEnt is a record: off is its chunk << chunkBits | its offset, pfx
// the 8 bytes of its set key after those all keys share (see
// sortPrefixes), which order most pairs of records without reading
// their keys from the chunks.
type importEnt struct {
	pfx      uint64
	off, seq uint32
}

// entSize is what one record costs in ents, posSize in pos.
const (
	entSize = int64(unsafe.Sizeof(importEnt{}))
	posSize = int64(unsafe.Sizeof(importPos{}))
)

const (
	chunkBits = 20
	chunkSize = 1 << chunkBits // > any record
)

type importPos struct {
	file uint16 // index in files, +1 (0: none)
	line uint32
}

// ErrTooBig is an import refused for needing more memory than its limit.
var ErrTooBig = errors.New("zone too big for the memory budget")

// NewImport starts a new version of the zone origin. limit, when not 0,
// is the most memory (bytes) the records may take as held: past it the
// import fails with ErrTooBig. Records past Options.ImportSpill are
// spilled to the store's directory rather than held, but still counted
// against limit as if held: limit sizes the zone, and the snapshot
// built from it, as much as the import (see zones/budget.go).
func (s *Store) NewImport(origin string, limit int64) (*Import, error) {
	origin = zone.Canonical(origin)
	chk, err := zone.NewChecker(origin)
	if err != nil {
		return nil, err
	}
	return &Import{s: s, origin: origin, chk: chk, scratch: make([]byte, zone.ScratchSize), limit: limit, spillAt: s.opts.ImportSpill}, nil
}

// Expect makes room for n more records (an estimate, such as a zone
// file's size over a typical line's): a million records appended one by
// one would have their index copied over and over as it grew.
func (im *Import) Expect(n int) {
	if n <= 0 || im.err != nil {
		return
	}
	if im.limit > 0 {
		n = min(n, int(im.limit/128)) // room is counted against the limit too
	}
	if im.spillAt > 0 {
		// Room is counted towards a spill too, and is reused after it:
		// a record takes 24 bytes of it and some 40 or more of chunk.
		n = min(n, int(im.spillAt/64))
	}
	im.ents = slices.Grow(im.ents, n)
	im.pos = slices.Grow(im.pos, n)
	// The chunks too, in one piece: freed whole after Commit, it is
	// room for the snapshot's arena, which the build makes next. Chunks
	// made one by one leave the free heap in 1 MiB runs between
	// whatever else was made meanwhile, too short for the arena (48 MiB
	// for 1M records), and the build then faulted in that much more:
	// peak RSS 171 MiB rather than 158, and 4% longer to load. What is
	// not filled costs no RSS when the heap is fresh; reused, it is
	// cleared, at most the spill size (n is capped above).
	if nc := n * 64 / chunkSize; nc > 4 && im.block == nil {
		im.block = make([]byte, nc*chunkSize)
	}
}

// newChunk returns an empty chunk, from the room Expect made while it
// lasts.
func (im *Import) newChunk() []byte {
	if len(im.block) < chunkSize {
		return make([]byte, 0, chunkSize)
	}
	c := im.block[:0:chunkSize]
	im.block = im.block[chunkSize:]
	return c
}

// Origin is the zone being imported.
func (im *Import) Origin() string { return im.origin }

// Records is how many records were added.
func (im *Import) Records() int { return im.seq }

// Bytes is the memory the held records take, with the spill's buffers.
func (im *Import) Bytes() int64 {
	b := int64(len(im.chunks))*chunkSize + int64(cap(im.ents))*entSize + int64(cap(im.pos))*posSize
	if im.sp != nil {
		b += im.sp.bytes()
	}
	return b
}

// zoneBytes is what the records would take if all were held: Bytes
// until a spill, then what each spilled batch took and what the batch
// now held takes.
func (im *Import) zoneBytes() int64 {
	if im.sp == nil {
		return im.Bytes()
	}
	return im.spilled + im.batchBytes()
}

// batchBytes is what the records held take, of the memory held: the
// measure of a batch for a spill (the chunks, index and positions held
// are reused after it).
func (im *Import) batchBytes() int64 {
	return im.used + int64(len(im.ents))*entSize + int64(len(im.pos))*posSize
}

// Err is the first error that stops the import (ErrTooBig), if any;
// validation errors come from Commit.
func (im *Import) Err() error { return im.err }

// Add takes the next record, with where it was read (the zero Position
// when it was not) and a problem the parser found with it ("" if none).
func (im *Import) Add(rr dns.RR, pos zone.Position, problem string) {
	seq := im.seq
	im.seq++
	if pos != (zone.Position{}) {
		im.addPos(seq, pos)
	}
	if problem != "" {
		im.chk.Fail(seq, pos, problem)
		return
	}
	if im.err != nil {
		return
	}
	wire, h, ok := im.chk.Record(seq, rr, pos, im.scratch)
	if !ok {
		return
	}
	t := binary.BigEndian.Uint16(wire[h:])
	if soa, isSOA := rr.(*dns.SOA); isSOA {
		im.serial = soa.Serial
	}
	// The set key is at most twice the owner (escapes) and its type.
	need := 2 + 2*h + 2 + h + len(wire) - h
	if im.nchunk == 0 || chunkSize-len(im.chunks[im.nchunk-1]) < need {
		if im.nchunk == len(im.chunks) {
			if len(im.chunks) == 1<<(32-chunkBits) {
				im.tooBig()
				return
			}
			im.chunks = append(im.chunks, im.newChunk())
		}
		im.nchunk++
	}
	ci := im.nchunk - 1
	b := im.chunks[ci]
	off := len(b)
	b = append(b, 0, 0)
	b = setKey(b, wire[:h], t)
	binary.BigEndian.PutUint16(b[off:], uint16(len(b)-off-2))
	b = append(b, wire[:h]...)      // owner as written
	b = append(b, wire[h+2:h+8]...) // class, TTL
	b = append(b, wire[h+8:]...)    // rdlength, rdata
	im.chunks[ci] = b
	im.used += int64(len(b) - off)
	im.ents = append(im.ents, importEnt{off: uint32(ci<<chunkBits | off), seq: uint32(seq)})
	if im.limit > 0 && im.zoneBytes() > im.limit {
		im.tooBig()
		return
	}
	if im.spillAt > 0 && im.batchBytes() > im.spillAt {
		im.spillBatch()
	}
}

// spillBatch sorts the batch held and writes it out as a run (see
// spill.go), and reuses its memory for the next.
func (im *Import) spillBatch() {
	if im.sp == nil {
		im.sp = &spill{dir: filepath.Dir(im.s.db.Path())}
	}
	im.peak = max(im.peak, im.Bytes())
	im.sortEnts()
	err := im.sp.startRun()
	for _, e := range im.ents {
		if err != nil {
			break
		}
		err = im.sp.put(e.seq, im.posOf(e.seq), im.raw(e.off))
	}
	if err == nil {
		err = im.sp.flush()
	}
	if err == nil {
		err = im.sp.compact()
	}
	if err != nil {
		im.fail(fmt.Errorf("%s: %w", im.origin, err))
		return
	}
	im.spilled += im.batchBytes()
	for i := range im.chunks[:im.nchunk] {
		im.chunks[i] = im.chunks[i][:0]
	}
	im.nchunk, im.used = 0, 0
	im.ents = im.ents[:0]
	im.pos, im.posBase = im.pos[:0], im.seq
}

// sortEnts sorts the batch held into RRsets in key order, each set's
// records in arrival order. Prefixes first: comparing whole keys reads
// both records from the chunks, a cache miss each in a big zone.
func (im *Import) sortEnts() {
	im.sortPrefixes()
	slices.SortFunc(im.ents, func(a, b importEnt) int {
		if a.pfx != b.pfx {
			if a.pfx < b.pfx {
				return -1
			}
			return 1
		}
		if c := bytes.Compare(im.keyAt(a.off), im.keyAt(b.off)); c != 0 {
			return c
		}
		return int(a.seq) - int(b.seq)
	})
}

// sortPrefixes sets each record's pfx: the 8 bytes of its key after the
// ones every key shares (the apex's, and in a big zone often the start
// of its names' first label, "host" of host1 ... host500000), zero
// padded. Keys that tie on it are compared whole, so the padding is
// safe: a shorter key's zeros only ever tie with a longer key's bytes or
// sort before them, as bytes.Compare has it. The records are read in
// arrival order, the order the chunks hold them in.
func (im *Import) sortPrefixes() {
	if len(im.ents) == 0 {
		return
	}
	common := im.keyAt(im.ents[0].off)
	for _, e := range im.ents[1:] {
		k := im.keyAt(e.off)
		n := 0
		for n < len(common) && n < len(k) && common[n] == k[n] {
			n++
		}
		common = common[:n]
	}
	skip := len(common)
	for i := range im.ents {
		var p [8]byte
		if k := im.keyAt(im.ents[i].off); len(k) > skip {
			copy(p[:], k[skip:])
		}
		im.ents[i].pfx = binary.BigEndian.Uint64(p[:])
	}
}

// tooBig fails the import with ErrTooBig.
func (im *Import) tooBig() {
	im.fail(fmt.Errorf("%s: %w: %d records took %d MiB (limit %d MiB)", im.origin, ErrTooBig, im.seq, im.zoneBytes()>>20, im.limit>>20))
}

// fail stops the import: what it held is dropped at once.
func (im *Import) fail(err error) {
	im.err = err
	im.Abort()
}

// Abort drops what the import holds and closes its spill file (which
// has no name: nothing is left on disk either way). An import that is
// not committed should be aborted, for the file; Commit does it itself.
func (im *Import) Abort() {
	if im.sp != nil {
		im.sp.close()
		im.sp = nil
	}
	im.chunks, im.ents, im.pos, im.block = nil, nil, nil, nil
	im.nchunk, im.used = 0, 0
}

func (im *Import) addPos(seq int, pos zone.Position) {
	fi := 0
	if pos.File != "" {
		fi = slices.Index(im.files, pos.File) // a zone reads few files
		if fi < 0 && len(im.files) < 1<<16-1 {
			im.files = append(im.files, pos.File)
			fi = len(im.files) - 1
		}
		fi++
	}
	for len(im.pos) < seq-im.posBase {
		im.pos = append(im.pos, importPos{})
	}
	im.pos = append(im.pos, importPos{file: uint16(fi), line: uint32(pos.Line)})
}

// posOf is where the record seq of the batch held was read.
func (im *Import) posOf(seq uint32) importPos {
	i := int(seq) - im.posBase
	if i < 0 || i >= len(im.pos) {
		return importPos{}
	}
	return im.pos[i]
}

func (im *Import) position(p importPos) zone.Position {
	var pos zone.Position
	if p.file > 0 {
		pos.File = im.files[p.file-1]
	}
	pos.Line = int(p.line)
	return pos
}

// keyAt returns the RRset key of the record at off.
func (im *Import) keyAt(off uint32) []byte {
	b := im.chunks[off>>chunkBits][off&(chunkSize-1):]
	kl := int(binary.BigEndian.Uint16(b))
	return b[2 : 2+kl]
}

// record returns the parts of the record at off.
func (im *Import) record(off uint32) (key, owner, rest []byte) {
	return splitRecord(im.chunks[off>>chunkBits][off&(chunkSize-1):])
}

// raw returns the record at off as held.
func (im *Import) raw(off uint32) []byte {
	b := im.chunks[off>>chunkBits][off&(chunkSize-1):]
	key, owner, rest := splitRecord(b)
	return b[:2+len(key)+len(owner)+len(rest)]
}

// splitRecord returns the parts of the record b starts with, as held.
func splitRecord(b []byte) (key, owner, rest []byte) {
	kl := int(binary.BigEndian.Uint16(b))
	key = b[2 : 2+kl]
	b = b[2+kl:]
	h := 0
	for b[h] != 0 {
		h += 1 + int(b[h])
	}
	h++
	owner = b[:h]
	rdlen := int(binary.BigEndian.Uint16(b[h+6:]))
	return key, owner, b[h : h+8+rdlen] // class, TTL, rdlength, rdata
}

// Visit has Commit call fn for every record it keeps, in the store's
// order (as ReadZone will read them), with the owner in wire form as
// written, the type and the RDATA, as it checks them (a zone that then
// fails validation has been visited too) and before they are written:
// a snapshot can be sized from it without reading the store twice. The
// slices are the Import's, valid only during the call.
func (im *Import) Visit(fn func(owner []byte, t uint16, rdata []byte)) { im.visit = fn }

// Commit validates the zone as a whole and stores it as the zone's new
// version: the RRsets that changed are written in one transaction, as
// PutZoneFrom does. Validation errors are a zone.ErrorList; the zone is
// then left as it was. The Import is spent either way.
func (im *Import) Commit(source string) (Info, error) {
	if im.err != nil {
		im.Abort()
		return Info{}, im.err
	}
	im.sortEnts()
	if im.sp != nil {
		return im.commitMerged(source)
	}
	im.peak = max(im.peak, im.Bytes())
	// Drop duplicates (the first one read wins, as in buildSets) and
	// check placement, set by set.
	out := im.ents[:0]
	var seen map[string]struct{} // for large RRsets
	for i := 0; i < len(im.ents); {
		key := im.keyAt(im.ents[i].off)
		j := i
		start := len(out)
		clear(seen)
		for ; j < len(im.ents); j++ {
			k, owner, rest := im.record(im.ents[j].off)
			if !bytes.Equal(k, key) {
				break
			}
			if im.dup(out[start:], rest, &seen) {
				continue
			}
			out = append(out, im.ents[j])
			im.chk.Place(int(im.ents[j].seq), im.position(im.posOf(im.ents[j].seq)), owner, setType(key))
			if im.visit != nil {
				im.visit(owner, setType(key), rest[8:])
			}
		}
		i = j
	}
	im.ents = out
	if err := im.chk.Err(); err != nil {
		return Info{}, err
	}
	im.pos, im.files = nil, nil

	info, err := im.s.writeNew(im.origin, im.serial, im.sets(), source)
	im.chunks, im.ents, im.block = nil, nil, nil
	return info, err
}

// commitMerged is Commit for an import that spilled: the runs and the
// last batch are merged twice, for the checks and then for the write,
// each pass dropping the same duplicates (see kept).
func (im *Import) commitMerged(source string) (Info, error) {
	defer im.Abort()
	var k kept
	k.restart(im.sp, im)
	im.peak = max(im.peak, im.Bytes())
	for {
		r, err := k.next()
		if err != nil {
			return Info{}, err
		}
		if r == nil {
			break
		}
		t := setType(r.key)
		im.chk.Place(int(r.seq), im.position(r.pos), r.owner, t)
		if im.visit != nil {
			im.visit(r.owner, t, r.rest[8:])
		}
	}
	if err := im.chk.Err(); err != nil {
		return Info{}, err
	}
	k.restart(im.sp, im)
	return im.s.writeNew(im.origin, im.serial, k.sets(), source)
}

// dup reports whether a record with the same class and rdata as rest
// (class, TTL, rdlength, rdata) is among the set's records so far, and
// remembers it if not (see dupIn).
func (im *Import) dup(set []importEnt, rest []byte, seen *map[string]struct{}) bool {
	return dupIn(len(set), func(i int) []byte {
		_, _, r := im.record(set[i].off)
		return r
	}, rest, seen)
}

// dupIn is dup for a set of n records, the i-th's class, TTL, rdlength
// and rdata at(i): small sets are scanned, large ones indexed.
func dupIn(n int, at func(int) []byte, rest []byte, seen *map[string]struct{}) bool {
	const scan = 16
	id := func(r []byte) string { return string(r[:2]) + string(r[6:]) }
	if n < scan {
		for i := range n {
			r := at(i)
			if bytes.Equal(r[:2], rest[:2]) && bytes.Equal(r[6:], rest[6:]) {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]struct{})
	}
	if len(*seen) == 0 {
		for i := range n {
			(*seen)[id(at(i))] = struct{}{}
		}
	}
	k := id(rest)
	if _, ok := (*seen)[k]; ok {
		return true
	}
	(*seen)[k] = struct{}{}
	return false
}

// sets hands out the sorted records as RRsets, their values encoded as
// the store keeps them, in one reused buffer.
func (im *Import) sets() setIter {
	i := 0
	var val []byte
	return func() (rrset, bool, error) {
		if i == len(im.ents) {
			return rrset{}, false, nil
		}
		key, _, _ := im.record(im.ents[i].off)
		val = val[:0]
		var prev []byte
		n := 0
		for ; i < len(im.ents); i++ {
			k, owner, rest := im.record(im.ents[i].off)
			if !bytes.Equal(k, key) {
				break
			}
			if n > 0 && bytes.Equal(owner, prev) {
				val = append(val, 0)
			} else {
				val = append(val, 1)
				val = append(val, owner...)
			}
			prev = owner
			val = append(val, rest...)
			n++
		}
		return rrset{key: key, val: val, n: n}, true, nil
	}
}
