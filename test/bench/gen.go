// Package bench holds what `make bench` (cmd/bench) needs besides its main
// loop: the generated benchmark zone and dnsperf query file, starting and
// stopping NSD, Knot and Shoestring pinned to a core, probing them for
// correct answers, running dnsperf, and reading a server's CPU time and
// memory from /proc. Everything that can be checked without a server
// (generators, output parsers) is covered by `go test`.
package bench

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Origin is the benchmark zone's name. .test is reserved (RFC 6761), so the
// zone can never shadow a real one on a developer's machine.
const Origin = "bench.test."

// ZoneConfig describes the generated zone.
type ZoneConfig struct {
	Origin string
	Hosts  int // host<i> names, each with one A and one AAAA record
	Serial uint32
}

// DefaultZone is the zone the benchmark serves: 100,000 host names.
func DefaultZone() ZoneConfig {
	return ZoneConfig{Origin: Origin, Hosts: 100_000, Serial: 1}
}

// MaxHosts bounds Hosts because HostA packs the index into the low 24 bits
// of 10.0.0.0/8; beyond that names would share addresses and the probes
// could no longer tell a right answer from a wrong one.
const MaxHosts = 1 << 24

// TTL of every generated record; its value does not matter to any server.
const TTL = 3600

// Fixed answers for the records that are not per host. Documentation
// prefixes (RFC 5737, RFC 3849), so nothing here is routable.
var (
	NS1A     = netip.MustParseAddr("192.0.2.1")
	NS2A     = netip.MustParseAddr("192.0.2.2")
	WildA    = netip.MustParseAddr("198.51.100.1")
	WildAAAA = netip.MustParseAddr("2001:db8:ffff::1")
)

// HostName is the owner name of host i.
func HostName(origin string, i int) string { return fmt.Sprintf("host%d.%s", i, origin) }

// HostA is host i's IPv4 address: distinct per host, so a probe can check
// that a server answered for the right name and not just with any address.
func HostA(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// HostAAAA is host i's IPv6 address, distinct per host like HostA.
func HostAAAA(i int) netip.Addr {
	b := netip.MustParseAddr("2001:db8::").As16()
	b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return netip.AddrFrom16(b)
}

// WildParent is the name whose children are all answered by the wildcard.
func WildParent(origin string) string { return "wild." + origin }

// ZoneStats counts what WriteZone wrote.
type ZoneStats struct {
	Names   int // distinct owner names, the wildcard counted as one
	Records int
}

func (c ZoneConfig) validate() error {
	if !strings.HasSuffix(c.Origin, ".") || c.Origin == "." {
		return fmt.Errorf("zone origin %q must be fully qualified and not the root", c.Origin)
	}
	if c.Hosts < 1 || c.Hosts > MaxHosts {
		return fmt.Errorf("hosts %d out of range 1..%d", c.Hosts, MaxHosts)
	}
	return nil
}

// WriteZone writes the zone in master-file format. Every line carries its
// owner, TTL and class in full and there is no $ORIGIN or $TTL, so each
// server's parser sees the same records with no directive to interpret
// differently.
func WriteZone(w io.Writer, c ZoneConfig) (ZoneStats, error) {
	if err := c.validate(); err != nil {
		return ZoneStats{}, err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var st ZoneStats
	rr := func(owner, typ, rdata string) {
		fmt.Fprintf(bw, "%s\t%d\tIN\t%s\t%s\n", owner, TTL, typ, rdata)
		st.Records++
	}
	o := c.Origin
	// SOA timers are ordinary; the negative TTL (last field) is what
	// NXDOMAIN answers carry.
	rr(o, "SOA", fmt.Sprintf("ns1.%s hostmaster.%s %d 7200 3600 1209600 3600", o, o, c.Serial))
	rr(o, "NS", "ns1."+o)
	rr(o, "NS", "ns2."+o)
	rr("ns1."+o, "A", NS1A.String())
	rr("ns2."+o, "A", NS2A.String())
	rr("*."+WildParent(o), "A", WildA.String())
	rr("*."+WildParent(o), "AAAA", WildAAAA.String())
	st.Names = 4 // apex, ns1, ns2, the wildcard
	for i := range c.Hosts {
		name := HostName(o, i)
		rr(name, "A", HostA(i).String())
		rr(name, "AAAA", HostAAAA(i).String())
		st.Names++
	}
	return st, bw.Flush()
}

// Kind is one category of query in the mix.
type Kind int

// The query categories. Their order is the order of Mix's fields.
const (
	KindA    Kind = iota // A for an existing host: the common positive answer
	KindAAAA             // AAAA for an existing host
	KindNX               // a name that does not exist: NXDOMAIN with the SOA
	KindWild             // A for a name under the wildcard: synthesized answer
	numKinds
)

func (k Kind) String() string {
	return [...]string{"A", "AAAA", "NXDOMAIN", "wildcard"}[k]
}

// Mix is the relative weight of each query category.
type Mix [numKinds]int

// DefaultMix is 40% A hits, 20% AAAA hits, 20% NXDOMAIN, 20% wildcard.
var DefaultMix = Mix{40, 20, 20, 20}

// Counts apportions total queries to the categories exactly (largest
// remainder), so a query file has precisely the mix it claims and the
// expected share of NXDOMAIN in dnsperf's output is known.
func (m Mix) Counts(total int) [numKinds]int {
	var out [numKinds]int
	sum := 0
	for _, w := range m {
		sum += w
	}
	if sum <= 0 || total <= 0 {
		return out
	}
	type rem struct{ k, r int }
	var rems []rem
	given := 0
	for k, w := range m {
		out[k] = total * w / sum
		given += out[k]
		rems = append(rems, rem{k, total * w % sum})
	}
	// Hand the leftovers to the largest remainders; ties go to the earlier
	// category so the result is deterministic.
	for given < total {
		best := 0
		for i := range rems {
			if rems[i].r > rems[best].r {
				best = i
			}
		}
		out[rems[best].k]++
		rems[best].r = -1
		given++
	}
	return out
}

// QueryConfig describes the generated dnsperf input.
type QueryConfig struct {
	Zone  ZoneConfig
	Count int
	Seed  uint64
	Mix   Mix
}

// DefaultQueries is the benchmark's query file: 200,000 lines, enough that
// host names are drawn from the whole zone, small enough for dnsperf to
// hold in memory. dnsperf loops over it for as long as a run lasts.
func DefaultQueries() QueryConfig {
	return QueryConfig{Zone: DefaultZone(), Count: 200_000, Seed: 1, Mix: DefaultMix}
}

// splitmix64 is the generator behind the query file. It is written out here
// rather than taken from math/rand so that the same seed gives the same file
// with any Go version: results are only comparable across machines and
// months when the input is byte-for-byte the same.
type splitmix64 struct{ s uint64 }

func (r *splitmix64) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn's modulo bias is below n/2^64, far below anything a benchmark sees.
func (r *splitmix64) intn(n int) int { return int(r.next() % uint64(n)) }

// WriteQueries writes a dnsperf query file ("name type" per line) with
// exactly Mix.Counts(Count) queries of each kind, in a seeded random order
// so no kind arrives in bursts. It returns the per-kind counts.
func WriteQueries(w io.Writer, c QueryConfig) ([numKinds]int, error) {
	counts := c.Mix.Counts(c.Count)
	if err := c.Zone.validate(); err != nil {
		return counts, err
	}
	if c.Count < 1 {
		return counts, fmt.Errorf("query count %d must be positive", c.Count)
	}
	kinds := make([]Kind, 0, c.Count)
	for k, n := range counts {
		for range n {
			kinds = append(kinds, Kind(k))
		}
	}
	if len(kinds) != c.Count {
		return counts, fmt.Errorf("query mix %v has no positive weight", c.Mix)
	}
	rng := &splitmix64{s: c.Seed}
	for i := len(kinds) - 1; i > 0; i-- {
		j := rng.intn(i + 1)
		kinds[i], kinds[j] = kinds[j], kinds[i]
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	o := c.Zone.Origin
	for _, k := range kinds {
		switch k {
		case KindA:
			fmt.Fprintf(bw, "%s A\n", HostName(o, rng.intn(c.Zone.Hosts)))
		case KindAAAA:
			fmt.Fprintf(bw, "%s AAAA\n", HostName(o, rng.intn(c.Zone.Hosts)))
		case KindNX:
			// "nx" never collides with "host", "ns1", "ns2" or "wild".
			fmt.Fprintf(bw, "nx%d.%s A\n", rng.intn(1_000_000_000), o)
		case KindWild:
			fmt.Fprintf(bw, "w%d.%s A\n", rng.intn(1_000_000_000), WildParent(o))
		}
	}
	return counts, bw.Flush()
}
