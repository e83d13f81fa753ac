// Package zones is the zones this node serves: applying a new version of a
// zone — store write, journal, snapshot build and swap, problem state — on
// one path, with one owner. Every writer goes through it: zone files at
// boot, the management API, transfers (AXFR, IXFR, expiry) and the catalog
// this node produces. Zone data flows one way: the store is written first,
// then an immutable snapshot is swapped in on the DNS server, which reads
// only snapshots. Subscribers (outbound NOTIFY, the produced catalog) are
// told of every change.
package zones

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// BigZone is the record count above which a zone is applied in big-zone
// mode (see Apply): one at a time, under the memory target, with memory
// handed back to the OS right after — a 512 MB box needs it for the next
// one.
const BigZone = 100_000

// bigZoneGCPercent is GOGC while a big zone is applied or loaded.
const bigZoneGCPercent = 25

// buildGCPercent is GOGC while a big zone's snapshot is built (see
// buildSized).
const buildGCPercent = 200

// ErrNotFound is returned for a zone the node does not have.
var ErrNotFound = errors.New("zone not found")

// Server is where snapshots are served (the DNS server).
type Server interface {
	Replace(zones []*dnsserver.Zone)
	Put(z *dnsserver.Zone)
	Delete(origin string) bool
	Zone(origin string) *dnsserver.Zone
}

// Options configure the zones.
type Options struct {
	Store *store.Store
	Log   *slog.Logger
	// MemoryTarget is the Go heap's soft limit while a big zone is
	// applied (secondary.limits.memory_target); 0 or -1 leaves the GC
	// alone.
	MemoryTarget int64
	// MemoryLimit is the node's memory budget in bytes
	// (dns.memory_limit, see budget.go); 0: DefaultMemoryLimit (from
	// the box's RAM); -1: none.
	MemoryLimit int64
}

// Info is one zone as the store and the server know it.
type Info struct {
	store.Info
	Serving      bool
	ServedSerial uint32
	Problem      string
}

// Change is a zone that changed: a new version served (or stored), or,
// with Deleted, one no longer served.
type Change struct {
	Origin  string
	Source  string // "api", "file", "transfer", "catalog"; "" when deleted
	Deleted bool
}

// Zones is every zone the node serves.
type Zones struct {
	store        *store.Store
	log          *slog.Logger
	memoryTarget int64
	budget       budget
	srv          Server

	bigMu sync.Mutex // one big zone update at a time

	mu       sync.Mutex // serialises zone changes: store write, then swap
	problems map[string]string
	subs     []func(Change)
}

// New returns the zones kept in opts.Store; Load serves them.
func New(opts Options) *Zones {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	zs := &Zones{store: opts.Store, log: opts.Log, memoryTarget: opts.MemoryTarget, problems: map[string]string{}}
	zs.budget.limit = opts.MemoryLimit
	if opts.MemoryLimit == 0 {
		zs.budget.limit = DefaultMemoryLimit()
	}
	return zs
}

// Subscribe has fn called after every change, with the zones' lock held:
// fn must only take note (and hand the work to its own goroutine).
func (zs *Zones) Subscribe(fn func(Change)) {
	zs.mu.Lock()
	defer zs.mu.Unlock()
	zs.subs = append(zs.subs, fn)
}

// changedLocked tells the subscribers; zs.mu is held.
func (zs *Zones) changedLocked(c Change) {
	for _, fn := range zs.subs {
		fn(c)
	}
}

// Load builds snapshots of every zone in the store, using every core, and
// serves them on srv, from which on every change is served there. Call it
// once, before the server starts: a box that reboots answers at once,
// from the store, before any import or transfer. Each snapshot is built
// straight from the store's records (see build), so a big zone costs its
// snapshot and little more; memory the load used is handed back after.
func (zs *Zones) Load(srv Server) error {
	infos, err := zs.store.List()
	if err != nil {
		return fmt.Errorf("loading zones from store: %w", err)
	}
	jobs := make(chan store.Info)
	var (
		mu    sync.Mutex
		snaps []*dnsserver.Zone
		wg    sync.WaitGroup
		big   bool
	)
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for info := range jobs {
				s, err := zs.build(info.Origin)
				mu.Lock()
				if err != nil {
					zs.notServed(info.Origin, err)
				} else {
					snaps = append(snaps, s)
				}
				mu.Unlock()
			}
		}()
	}
	fit := zs.bootBudget()
	for _, info := range infos {
		if info.Records > BigZone {
			// One big zone at a time, not one per core, under the
			// memory target: each needs scratch the size of its records.
			big = true
			s, err := func() (*dnsserver.Zone, error) {
				defer zs.bigZoneMode()()
				size, err := zs.sizeOf(info.Origin)
				if err != nil {
					return nil, err
				}
				if err := fit(info, size.Bytes()); err != nil {
					return nil, err
				}
				return zs.buildSized(info.Origin, size, false)
			}()
			mu.Lock()
			if err != nil {
				zs.notServed(info.Origin, err)
			} else {
				snaps = append(snaps, s)
			}
			mu.Unlock()
			continue
		}
		if err := fit(info, smallZoneBytes(info.Records)); err != nil {
			zs.notServed(info.Origin, err)
			continue
		}
		jobs <- info
	}
	close(jobs)
	wg.Wait()
	zs.mu.Lock()
	zs.srv = srv
	zs.mu.Unlock()
	srv.Replace(snaps)
	if big {
		ReleaseMemory()
	}
	return nil
}

// sizeFirst is the record count from which build reads a zone twice:
// first to size the snapshot's tables, then to fill them (see
// dnsserver.Size). Reading is cheap next to building; below this the
// tables are small and the first read is not worth it (ten thousand
// small zones load at boot).
const sizeFirst = 20_000

// build builds the snapshot of a stored zone from the store's records.
func (zs *Zones) build(origin string) (*dnsserver.Zone, error) {
	return zs.buildSized(origin, nil, false)
}

// buildSized is build with the snapshot's size known already (counted
// from the import just stored; like the first read, only a hint), or
// nil: then a big zone is read twice. trim says the runtime holds freed
// memory (an import's, collected but not handed back): the snapshot's
// tables are made first, in what of it they fit in, and the rest goes
// back to the OS before they are filled, so that it does not add to
// the peak.
func (zs *Zones) buildSized(origin string, size *dnsserver.Size, trim bool) (*dnsserver.Zone, error) {
	if size == nil {
		if info, err := zs.store.Info(origin); err == nil && info.Records >= sizeFirst {
			if size, err = zs.sizeOf(origin); err != nil {
				return nil, err
			}
		}
	}
	if size != nil && size.Records > BigZone {
		// What a big build allocates is sized up front and live until
		// it ends: a collection in between frees nothing and costs most
		// of a second of CPU marking a million records' tables.
		defer debug.SetGCPercent(debug.SetGCPercent(buildGCPercent))
	}
	var b *dnsserver.Builder
	var berr error
	if size != nil {
		b, berr = dnsserver.NewBuilderSized(origin, *size)
		if berr != nil {
			return nil, berr
		}
		if trim {
			debug.FreeOSMemory()
		}
	}
	err := zs.store.ReadZone(origin, func(info store.Info) {
		if b == nil {
			b, berr = dnsserver.NewBuilder(info.Origin, info.Records)
		}
	}, func(owner []byte, t uint16, ttl uint32, rdata []byte) {
		if berr == nil {
			b.Add(owner, t, ttl, rdata)
		}
	})
	if err == nil {
		err = berr
	}
	if err != nil {
		return nil, err
	}
	return b.Finish()
}

// notServed records why a stored zone is not served after Load.
func (zs *Zones) notServed(origin string, err error) {
	zs.setProblem(origin, err.Error())
	if errors.Is(err, ErrOverBudget) {
		zs.log.Error("zone in store not served: over the memory budget", "zone", origin, "err", err)
		return
	}
	zs.log.Error("zone in store does not build; not served", "zone", origin, "err", err)
}

// sizeOf reads a stored zone once to size its snapshot. Only a hint: a
// change in between costs a copy, not a wrong snapshot.
func (zs *Zones) sizeOf(origin string) (*dnsserver.Size, error) {
	size := &dnsserver.Size{}
	err := zs.store.ReadZone(origin, func(store.Info) {}, func(owner []byte, t uint16, _ uint32, rdata []byte) {
		size.Add(owner, t, rdata)
	})
	if err != nil {
		return nil, err
	}
	return size, nil
}

// ImportConfigured imports the zone files the config names. A file that
// does not parse or validate leaves the stored version serving.
func (zs *Zones) ImportConfigured(files []config.Zone) {
	for _, zc := range files {
		origin := zone.Canonical(zc.Origin)
		_, err := zs.ImportFile(zc.File, origin, "file")
		if err != nil {
			zs.setProblem(origin, err.Error())
			served := "not served"
			if zs.srv.Zone(origin) != nil {
				served = "the previous version keeps serving"
			}
			zs.log.Error("zone file rejected; "+served, "zone", origin, "file", zc.File, "err", err)
		}
	}
}

// bigFile is the zone file size from which an import runs in big-zone
// mode from the start (about 100,000 records).
const bigFile = 4 << 20

// bytesPerRecord is a zone file's size per record, about, for making
// room in a big import up front when its first block has no line end: a
// little more than a short address line takes, so that the room is
// rarely more than needed.
const bytesPerRecord = 56

// expectRecords estimates how many records a big zone file of size bytes
// holds from the lines in its first block (head): a record is a line in
// the files that are big. Room made up front is touched (and counted
// against the import's budget), so the estimate is not padded much; one
// that falls short costs a copy of the import's index as it grows, some
// 0.1 s of a 1M-record import.
func expectRecords(size int64, head []byte) int {
	lines := bytes.Count(head, []byte{'\n'})
	if lines == 0 || len(head) == 0 {
		return int(size / bytesPerRecord)
	}
	return int(size*int64(lines)/int64(len(head))) * 102 / 100
}

// ImportFile parses, validates, stores and serves a master file as the
// zone origin, streaming: records go into the store's import as they are
// parsed, never all held as dns.RR (see store.Import). A bad file changes
// nothing; its errors name file and line.
func (zs *Zones) ImportFile(path, origin, source string) (store.Info, error) {
	origin = zone.Canonical(origin)
	f, err := os.Open(path)
	if err != nil {
		return store.Info{}, zone.ErrorList{{Pos: zone.Position{File: path}, Msg: err.Error()}}
	}
	defer f.Close()
	big := false
	var size int64
	if st, err := f.Stat(); err == nil && st.Size() > bigFile {
		size = st.Size()
		// Parsing makes garbage at the rate it reads.
		big = true
		defer ReleaseMemory()
		defer zs.bigZoneMode()()
	}
	im, err := zs.newImport(origin)
	if err != nil {
		return store.Info{}, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	if big {
		head, _ := br.Peek(64 << 10)
		im.Expect(expectRecords(size, head))
	}
	if err := zone.ParseStream(br, origin, path, filepath.Dir(path), im.Add); err != nil {
		im.Abort() // its spill file, if any
		return store.Info{}, err
	}
	return zs.apply(im, source, big)
}

// Apply validates and stores a zone import and serves the new version;
// source says where it came from ("api", "file", "transfer",
// "catalog"). This is the one path every new version of a whole zone
// takes. A zone that does not validate changes nothing.
//
// The store is written first, then the snapshot is built from what was
// stored (a zone that validated always builds), and swapped in: what is
// answered is always what a reboot would answer. Big zones are applied
// one at a time in big-zone mode, and the memory they used is handed
// back to the OS after.
func (zs *Zones) Apply(im *store.Import, source string) (store.Info, error) {
	return zs.apply(im, source, false)
}

// apply is Apply; inBig says the caller holds big-zone mode already.
func (zs *Zones) apply(im *store.Import, source string, inBig bool) (store.Info, error) {
	origin := im.Origin()
	if im.Records() > BigZone && !inBig {
		defer ReleaseMemory()
		defer zs.bigZoneMode()()
	}
	// The snapshot's tables are sized from what Commit keeps (see
	// build), not from a first read of the store.
	var size *dnsserver.Size
	if im.Records() >= sizeFirst {
		size = &dnsserver.Size{}
		im.Visit(size.Add)
	}
	zs.mu.Lock()
	info, err := im.Commit(source)
	zs.mu.Unlock()
	if err != nil {
		return store.Info{}, zs.overBudget(err)
	}
	switch {
	case inBig:
		// A zone file's records (the parser leaves little else) are
		// freed for the build to reuse, not handed back to the OS: the
		// build would fault the same pages in again, which cost more
		// CPU than anything else in it (1M records: 1.5 s of CPU with
		// them handed back, 0.85 s without; peak 159 and 161 MiB).
		runtime.GC()
	case im.Records() > BigZone:
		// A transfer's records came as dns.RR values decoded from
		// messages, whose garbage is spread over many small spans:
		// kept, a 1M-record AXFR peaked at 205 MiB in one run of
		// TestMillionRecordZone (178 in make bench), handed back at
		// 175-176. They go back to the OS first.
		ReleaseMemory()
	}
	snap, err := zs.buildSized(origin, size, inBig)
	if err != nil {
		zs.setProblem(origin, "stored but not servable: "+err.Error())
		return store.Info{}, err
	}
	zs.mu.Lock()
	defer zs.mu.Unlock()
	if cur, err := zs.store.Info(origin); err == nil && cur.Serial == info.Serial && cur.Updated.Equal(info.Updated) {
		// Unless the zone changed again meanwhile (then that version
		// is the one served).
		zs.srv.Put(snap)
		zs.setProblemLocked(origin, "")
		zs.changedLocked(Change{Origin: origin, Source: source})
	}
	return info, nil
}

func (zs *Zones) setProblem(origin, p string) {
	zs.mu.Lock()
	defer zs.mu.Unlock()
	zs.setProblemLocked(origin, p)
}

func (zs *Zones) setProblemLocked(origin, p string) {
	if p == "" {
		delete(zs.problems, origin)
	} else {
		zs.problems[origin] = p
	}
}

// Transfer is a zone arriving by AXFR, streamed into a store import as
// its records come (an xfr.Sink); PutTransfer applies it.
type Transfer struct{ im *store.Import }

// Add takes the next record of the zone.
func (t *Transfer) Add(rr dns.RR) { t.im.Add(rr, zone.Position{}, "") }

// Records is how many records have come.
func (t *Transfer) Records() int { return t.im.Records() }

// Abort drops a transfer that is not to be applied (and closes its spill
// file, if it had one); after PutTransfer it does nothing.
func (t *Transfer) Abort() { t.im.Abort() }

// NewTransfer starts taking a new version of origin by transfer.
func (zs *Zones) NewTransfer(origin string) (*Transfer, error) {
	im, err := zs.newImport(origin)
	if err != nil {
		return nil, err
	}
	return &Transfer{im: im}, nil
}

// PutTransfer validates, stores and serves a transferred zone (Apply).
func (zs *Zones) PutTransfer(t *Transfer) (store.Info, error) {
	return zs.Apply(t.im, "transfer")
}

// Put stores a new version of a zone held in memory and serves it (see
// Apply); source says where it came from.
func (zs *Zones) Put(z *zone.Zone, source string) (store.Info, error) {
	im, err := zs.newImport(z.Origin)
	if err != nil {
		return store.Info{}, err
	}
	for i, rr := range z.Records {
		var pos zone.Position
		if i < len(z.Pos) {
			pos = z.Pos[i]
		}
		im.Add(rr, pos, "")
	}
	return zs.Apply(im, source)
}

// bigZoneMode serialises big zone updates and holds the Go heap to the
// configured memory target while one runs; the returned func undoes it.
func (zs *Zones) bigZoneMode() func() {
	zs.bigMu.Lock()
	prev := debug.SetMemoryLimit(-1)
	if zs.memoryTarget > 0 && zs.memoryTarget < prev {
		debug.SetMemoryLimit(zs.memoryTarget)
	}
	// Collect when the heap has grown a quarter, not doubled: a big
	// zone's scratch is large and short-lived, and the peak is what
	// gets a small box OOM-killed.
	prevGC := debug.SetGCPercent(bigZoneGCPercent)
	return func() {
		debug.SetGCPercent(prevGC)
		debug.SetMemoryLimit(prev)
		zs.bigMu.Unlock()
	}
}

// PutText parses, validates, stores and serves a zone from master file
// text (the API's upload). A bad file changes nothing.
func (zs *Zones) PutText(origin string, text []byte, source string) (Info, error) {
	origin = zone.Canonical(origin)
	im, err := zs.newImport(origin)
	if err != nil {
		return Info{}, err
	}
	if err := zone.ParseStream(bytes.NewReader(text), origin, origin+" (upload)", "", im.Add); err != nil {
		im.Abort() // its spill file, if any
		return Info{}, err
	}
	info, err := zs.Apply(im, source)
	if err != nil {
		return Info{}, err
	}
	return zs.info(info), nil
}

// ApplyDeltas applies an IXFR: the store checks that each delta starts
// at its serial and that the result validates, and journals the deltas
// (so this node serves IXFR onwards); then the snapshot is rebuilt from
// the stored zone and swapped in.
func (zs *Zones) ApplyDeltas(origin string, deltas []store.Delta) error {
	if snap := zs.srv.Zone(origin); snap != nil && snap.Records() > BigZone {
		// The store reads only the RRsets the deltas touch (and streams
		// the rest through validation), but the snapshot is rebuilt
		// whole while the old one serves.
		defer zs.bigZoneMode()()
		defer ReleaseMemory()
	}
	zs.mu.Lock()
	defer zs.mu.Unlock()
	if _, err := zs.store.ApplyDelta(origin, deltas); err != nil {
		return err
	}
	snap, err := zs.build(origin)
	if err != nil {
		// Stored but not servable: cannot happen for a zone that
		// validated; say so loudly rather than serve the old version
		// under the new serial's journal.
		zs.setProblemLocked(origin, "IXFR stored but not servable: "+err.Error())
		return err
	}
	zs.srv.Put(snap)
	zs.setProblemLocked(origin, "")
	zs.changedLocked(Change{Origin: origin, Source: "transfer"})
	return nil
}

// SetExpired makes the served zone answer SERVFAIL (a secondary zone past
// its SOA expire), or answer again; why is shown as its problem.
func (zs *Zones) SetExpired(origin string, expired bool, why string) {
	zs.mu.Lock()
	defer zs.mu.Unlock()
	snap := zs.srv.Zone(origin)
	if snap == nil || snap.Expired() == expired {
		return
	}
	zs.srv.Put(snap.WithExpired(expired))
	if expired {
		zs.setProblemLocked(origin, "expired (answering SERVFAIL): "+why)
	} else {
		zs.setProblemLocked(origin, "")
	}
}

// Delete stops serving a zone and removes it from the store; ErrNotFound
// when there is no such zone.
func (zs *Zones) Delete(origin string) error {
	origin = zone.Canonical(origin)
	zs.mu.Lock()
	defer zs.mu.Unlock()
	if err := zs.store.DeleteZone(origin); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s: %w", origin, ErrNotFound)
		}
		return err
	}
	zs.srv.Delete(origin)
	delete(zs.problems, origin)
	zs.changedLocked(Change{Origin: origin, Deleted: true})
	return nil
}

// List returns every stored zone with what the server knows of it.
func (zs *Zones) List() ([]Info, error) {
	infos, err := zs.store.List()
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(infos))
	for _, in := range infos {
		out = append(out, zs.info(in))
	}
	return out, nil
}

func (zs *Zones) info(in store.Info) Info {
	zi := Info{Info: in}
	if s := zs.srv.Zone(in.Origin); s != nil {
		zi.Serving = true
		zi.ServedSerial = s.Serial()
	}
	zs.mu.Lock()
	zi.Problem = zs.problems[in.Origin]
	zs.mu.Unlock()
	return zi
}

// Get returns one zone's info and its stored records; ErrNotFound when
// there is no such zone.
func (zs *Zones) Get(origin string) (Info, *zone.Zone, error) {
	origin = zone.Canonical(origin)
	z, err := zs.Zone(origin)
	if err != nil {
		return Info{}, nil, err
	}
	info, err := zs.store.Info(origin)
	if err != nil {
		return Info{}, nil, err
	}
	return zs.info(info), z, nil
}

// Zone returns the stored version of a zone; ErrNotFound when there is
// none.
func (zs *Zones) Zone(origin string) (*zone.Zone, error) {
	z, err := zs.store.Zone(origin)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", origin, ErrNotFound)
	}
	return z, err
}

// Journal returns the stored changes of a zone from serial from onwards
// (for IXFR out).
func (zs *Zones) Journal(origin string, from uint32) ([]store.Delta, error) {
	return zs.store.Journal(origin, from)
}

// SOA returns the served version's SOA, nil when the zone is not served,
// and whether it is expired (answering SERVFAIL).
func (zs *Zones) SOA(origin string) (soa *dns.SOA, expired bool) {
	snap := zs.srv.Zone(origin)
	if snap == nil {
		return nil, false
	}
	return snap.SOA(), snap.Expired()
}

// Problems lists each zone's problem as "origin: problem", sorted.
func (zs *Zones) Problems() []string {
	zs.mu.Lock()
	out := make([]string, 0, len(zs.problems))
	for o, p := range zs.problems {
		out = append(out, o+": "+p)
	}
	zs.mu.Unlock()
	sort.Strings(out)
	return out
}

// ReleaseMemory returns freed heap to the OS. sync.Pool contents (bbolt
// pools its write buffers) survive one collection in the pools' victim
// caches, so one GC runs before FreeOSMemory's own.
func ReleaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}
