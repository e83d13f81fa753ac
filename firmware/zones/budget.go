package zones

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/shoestring-dns/shoestring/firmware/store"
)

// The memory budget (dns.memory_limit): a new version of a zone, from a
// file, the API or a transfer, is refused when taking it would push the
// node past the budget, instead of the node being OOM-killed; the version
// served keeps serving. It is checked while the zone streams in: the
// import's records may take a share of what the budget has left, which
// leaves room for the snapshot built from them (measured: a snapshot and
// its build's scratch take about 2.5 times the import's records, and the
// old version is served until the new one is swapped in).

// importShare is how much of the budget left an import's records may
// take: the rest is for the snapshot built from them.
const importShare = 3

// ErrOverBudget is a zone refused for the memory budget.
var ErrOverBudget = errors.New("over the memory budget (dns.memory_limit)")

// budget is the node's memory budget and what it refused.
type budget struct {
	limit   int64 // bytes; <= 0: none
	refused atomic.Uint64
}

// MemoryStatus is the budget as the status page and metrics show it.
type MemoryStatus struct {
	Limit   int64  // bytes; 0: no limit
	Heap    int64  // bytes the Go heap holds now (live objects)
	Refused uint64 // zone versions refused for the budget since start
}

// MemoryStatus reports the budget.
func (zs *Zones) MemoryStatus() MemoryStatus {
	return MemoryStatus{Limit: max(zs.budget.limit, 0), Heap: heapLive(), Refused: zs.budget.refused.Load()}
}

// DefaultMemoryLimit is dns.memory_limit when not set: three quarters of
// the box's RAM (MemTotal), leaving the rest to the kernel, its page
// cache and the other processes; 0 (none) when it cannot be read.
func DefaultMemoryLimit() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10 * 3 / 4
		}
	}
	return 0
}

// heapLive is the Go heap's live bytes as of the last GC.
func heapLive() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// newImport starts an import of origin within the budget.
//
// The limit stays what it was, counted the same way, although an import
// no longer holds a big zone whole (it spills to the store's directory
// past store.Options.ImportSpill): it is the only check an import gets
// before its zone is stored, and what it guards is the snapshot built
// next, some 2.5 times the records' bytes as held, which spilling does
// not shrink. So the store counts spilled records as if held, and a zone
// is refused at the size it was refused at before, for the snapshot it
// would need; what spilling changes is that the import itself no longer
// adds a copy of the zone to the peak while it streams in and is
// written.
func (zs *Zones) newImport(origin string) (*store.Import, error) {
	limit := int64(0)
	if b := zs.budget.limit; b > 0 {
		// With nothing left, the first record refuses the import: one
		// that stays empty (a refresh answered by IXFR) costs nothing.
		limit = max((b-heapLive())/importShare, 1)
	}
	return zs.store.NewImport(origin, limit)
}

// bootBudget returns the check Load makes before it builds each stored
// zone: a zone whose snapshot would take the node past the budget,
// counting the heap in use and the zones let in before it, is not built
// (and not served; it stays in the store), rather than the node being
// OOM-killed at every boot. That happens when the budget was lowered, or
// the store moved to a box with less memory, since the zones were taken.
func (zs *Zones) bootBudget() func(info store.Info, bytes int64) error {
	limit := zs.budget.limit
	if limit <= 0 {
		return func(store.Info, int64) error { return nil }
	}
	runtime.GC()
	used := heapLive()
	return func(info store.Info, bytes int64) error {
		if used+bytes > limit {
			zs.budget.refused.Add(1)
			return fmt.Errorf("%w: not served: its %d records need about %d MiB and %d MiB of the %d MiB budget are in use (dns.memory_limit); it stays in the store",
				ErrOverBudget, info.Records, bytes>>20, used>>20, limit>>20)
		}
		used += bytes
		return nil
	}
}

// smallZoneBytes is what the boot check counts for a zone too small to
// be read twice (see sizeFirst): a generous per-record figure (a 1M-record
// zone's snapshot takes some 140 bytes a record) and a small zone's
// fixed tables.
func smallZoneBytes(records int) int64 { return int64(records)*256 + 8<<10 }

// overBudget turns an import refused for its size into the budget's
// error, and counts it.
func (zs *Zones) overBudget(err error) error {
	if !errors.Is(err, store.ErrTooBig) {
		return err
	}
	zs.budget.refused.Add(1)
	return fmt.Errorf("%w: %v; dns.memory_limit is %d MiB, the version served keeps serving", ErrOverBudget, err, zs.budget.limit>>20)
}
