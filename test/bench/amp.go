package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// The amplification benchmark: how many bytes and packets a server sends
// back for the bytes and packets a flood of spoofed-looking queries sends
// it, per kind of query, with response rate limiting off and on. The
// queries come from many addresses of one /24 on loopback (one unconnected
// socket picks each query's source with IP_PKTINFO, as test/abuse does),
// the way a reflection attack's victim appears to a server.

// AmpTXT is the number of 200-byte strings in the large TXT RRset of
// AmpZone: about 1 KB of answer, under the 1232-byte EDNS buffer the
// queries offer, so it is not truncated.
const AmpTXT = 4

// AmpLargeName is the name holding the large TXT RRset (and an A and an
// AAAA, so that a full ANY answer would be larger still).
func AmpLargeName(origin string) string { return "big." + origin }

// WriteAmpZone writes the amplification benchmark's zone: SOA, two NS
// with glue, big (AmpTXT TXT strings of 200 bytes, an A, an AAAA) and the
// wildcard *.wild (A and AAAA). Lines are written out in full, as by
// WriteZone.
func WriteAmpZone(w io.Writer, origin string) error {
	var b strings.Builder
	rr := func(name, typ, data string) { fmt.Fprintf(&b, "%s 3600 IN %s %s\n", name, typ, data) }
	rr(origin, "SOA", "ns1."+origin+" hostmaster."+origin+" 1 3600 900 1209600 300")
	rr(origin, "NS", "ns1."+origin)
	rr(origin, "NS", "ns2."+origin)
	rr("ns1."+origin, "A", "192.0.2.1")
	rr("ns2."+origin, "A", "192.0.2.2")
	big := AmpLargeName(origin)
	for i := range AmpTXT {
		rr(big, "TXT", `"`+strings.Repeat(string(rune('a'+i)), 200)+`"`)
	}
	rr(big, "A", "192.0.2.10")
	rr(big, "AAAA", "2001:db8::10")
	rr("*."+WildParent(origin), "A", WildA.String())
	rr("*."+WildParent(origin), "AAAA", WildAAAA.String())
	_, err := io.WriteString(w, b.String())
	return err
}

// AmpReadyProbe asks for the zone's SOA. With rate limiting on, the
// repeated probe soon exceeds the limit, so a truncated reply (slip) also
// counts as up: AmpCheck then checks the answers from another /24.
func AmpReadyProbe(origin string) Probe {
	return Probe{origin, dns.TypeSOA, func(m *dns.Msg) error {
		if m.Truncated {
			return nil
		}
		if err := header(m, dns.RcodeSuccess); err != nil {
			return err
		}
		if len(m.Answer) != 1 {
			return fmt.Errorf("%d answers, want the SOA", len(m.Answer))
		}
		return nil
	}}
}

// AmpCheck asks once for each class from src (an address of a /24 no
// flood uses) with the floods' EDNS buffer, and checks the answers.
func AmpCheck(addr string, src net.IP, origin string) error {
	c := &dns.Client{Net: "udp", Timeout: time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: src}}}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, cl := range AmpClasses() {
		name, qtype := cl.Question(origin, rng)
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		q.RecursionDesired = false
		q.SetEdns0(1232, false)
		m, _, err := c.Exchange(q, addr)
		if err != nil {
			return fmt.Errorf("%s %s: %w", name, dns.TypeToString[qtype], err)
		}
		want, rcode := 1, dns.RcodeSuccess
		switch cl {
		case AmpLarge:
			want = AmpTXT
		case AmpNX:
			want, rcode = 0, dns.RcodeNameError
		case AmpANY:
			want = -1 // RFC 8482: one RRset, or all of them
		}
		err = header(m, rcode)
		if err == nil && m.Truncated {
			err = fmt.Errorf("truncated")
		}
		if err == nil && want >= 0 && len(m.Answer) != want {
			err = fmt.Errorf("%d answers, want %d", len(m.Answer), want)
		}
		if err == nil && want < 0 && len(m.Answer) == 0 {
			err = fmt.Errorf("no answer")
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", name, dns.TypeToString[qtype], err)
		}
	}
	return nil
}

// AmpClass is a kind of query in the amplification benchmark.
type AmpClass int

const (
	AmpLarge AmpClass = iota // the large TXT RRset
	AmpNX                    // random names that do not exist
	AmpWild                  // random names under the wildcard
	AmpANY                   // ANY for the name with the large RRset
	numAmpClasses
)

// AmpClasses lists every class, in table order.
func AmpClasses() []AmpClass {
	cs := make([]AmpClass, numAmpClasses)
	for i := range cs {
		cs[i] = AmpClass(i)
	}
	return cs
}

func (c AmpClass) String() string {
	switch c {
	case AmpLarge:
		return "large TXT"
	case AmpNX:
		return "NXDOMAIN"
	case AmpWild:
		return "wildcard"
	case AmpANY:
		return "ANY"
	}
	return fmt.Sprintf("class%d", int(c))
}

// Question returns the name and type of a query of class c; random names
// come from rng.
func (c AmpClass) Question(origin string, rng *rand.Rand) (string, uint16) {
	switch c {
	case AmpNX:
		return fmt.Sprintf("nx%08x.%s", rng.Uint32(), origin), dns.TypeA
	case AmpWild:
		return fmt.Sprintf("w%08x.%s", rng.Uint32(), WildParent(origin)), dns.TypeA
	case AmpANY:
		return AmpLargeName(origin), dns.TypeANY
	}
	return AmpLargeName(origin), dns.TypeTXT
}

// UDPOverhead is the IPv4 and UDP header bytes around every datagram.
const UDPOverhead = 28

// AmpCount is what one flood sent and got back. Bytes are DNS message
// bytes (UDP payload).
type AmpCount struct {
	Queries, Responses int
	TC                 int // responses with TC=1 (RRL's slip)
	BytesIn, BytesOut  int64
}

// Response counts one reply of n bytes; tc is its TC bit.
func (c *AmpCount) Response(n int, tc bool) {
	c.Responses++
	c.BytesOut += int64(n)
	if tc {
		c.TC++
	}
}

// Query counts one query of n bytes.
func (c *AmpCount) Query(n int) {
	c.Queries++
	c.BytesIn += int64(n)
}

// Ratio is bytes out per byte in (DNS payload): the amplification factor.
func (c AmpCount) Ratio() float64 { return div(float64(c.BytesOut), float64(c.BytesIn)) }

// WireRatio is Ratio with each datagram's IPv4 and UDP headers counted.
func (c AmpCount) WireRatio() float64 {
	return div(float64(c.BytesOut+int64(c.Responses)*UDPOverhead), float64(c.BytesIn+int64(c.Queries)*UDPOverhead))
}

// PacketRatio is responses per query.
func (c AmpCount) PacketRatio() float64 { return div(float64(c.Responses), float64(c.Queries)) }

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// AmpResult is one flood: a server, a class, RRL off or on.
type AmpResult struct {
	Server string
	Class  AmpClass
	RRL    bool
	AmpCount
	Err error
}

// PrintAmp prints one line per result, with ours's out/in ratio as a
// multiple of ref's for the same class and RRL setting.
func PrintAmp(w io.Writer, rs []AmpResult, ours, ref string) {
	refRatio := map[[2]int]float64{}
	key := func(r AmpResult) [2]int {
		k := [2]int{int(r.Class), 0}
		if r.RRL {
			k[1] = 1
		}
		return k
	}
	for _, r := range rs {
		if r.Server == ref && r.Err == nil {
			refRatio[key(r)] = r.Ratio()
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "server\tclass\tRRL\tqueries\tresponses\tTC\tbytes in\tbytes out\tresp/q\tout/in\twire out/in\t%s/%s\t\n", ours, ref)
	for _, r := range rs {
		rrl := "off"
		if r.RRL {
			rrl = "on"
		}
		if r.Err != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\tFAILED\t\t\t\t\t\t\t\t\t\n", r.Server, r.Class, rrl)
			continue
		}
		vs := ""
		if r.Server == ours {
			if rr, ok := refRatio[key(r)]; ok && rr > 0 {
				vs = fmt.Sprintf("%.2fx", r.Ratio()/rr)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%s\t\n", r.Server, r.Class, rrl,
			r.Queries, r.Responses, r.TC, r.BytesIn, r.BytesOut, r.PacketRatio(), r.Ratio(), r.WireRatio(), vs)
	}
	tw.Flush()
	said := map[string]bool{}
	for _, r := range rs {
		if r.Err != nil {
			rrl := "off"
			if r.RRL {
				rrl = "on"
			}
			if k := r.Server + rrl; !said[k] {
				said[k] = true
				fmt.Fprintf(w, "\n%s, RRL %s: %v\n", r.Server, rrl, r.Err)
			}
		}
	}
}

// Flood sends queries of one class at a fixed rate from the addresses
// 127.Net.Host.1 … 127.Net.Host.Sources (one /24) to a server on
// loopback, and counts what comes back.
type Flood struct {
	Addr     string // server host:port
	Origin   string
	Net      byte // 127.Net.0.0/16 holds the /24
	Host     byte // third octet: the /24 is 127.Net.Host.0/24
	Sources  int  // distinct source addresses, at most 254
	Rate     int  // queries per second
	Duration time.Duration
	Drain    time.Duration // how long to wait for late replies
	Seed     uint64
}

// Run floods the server with queries of class c. Replies are matched to
// the flood only by arriving on its socket; each query has a fresh ID.
func (f Flood) Run(ctx context.Context, c AmpClass) (AmpCount, error) {
	var cnt AmpCount
	if f.Sources < 1 || f.Sources > 254 || f.Rate < 1 {
		return cnt, fmt.Errorf("flood: %d sources, %d qps", f.Sources, f.Rate)
	}
	dst, err := net.ResolveUDPAddr("udp4", f.Addr)
	if err != nil {
		return cnt, err
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return cnt, err
	}
	defer conn.Close()
	conn.SetReadBuffer(4 << 20)
	pc := ipv4.NewPacketConn(conn)

	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 || buf[2]&0x80 == 0 { // not a response
				continue
			}
			tc := binary.BigEndian.Uint16(buf[2:])&(1<<9) != 0
			mu.Lock()
			cnt.Response(n, tc)
			mu.Unlock()
		}
	}()

	rng := rand.New(rand.NewPCG(f.Seed, uint64(c)))
	total := int(f.Duration.Seconds() * float64(f.Rate))
	interval := time.Second / time.Duration(f.Rate)
	start := time.Now()
	var sendErr error
	for i := range total {
		if ctx.Err() != nil {
			sendErr = ctx.Err()
			break
		}
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		name, qtype := c.Question(f.Origin, rng)
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Id = uint16(rng.Uint32())
		m.RecursionDesired = false
		m.SetEdns0(1232, false)
		b, err := m.Pack()
		if err != nil {
			sendErr = err
			break
		}
		src := net.IPv4(127, f.Net, f.Host, byte(1+i%f.Sources))
		if _, err := pc.WriteTo(b, &ipv4.ControlMessage{Src: src}, dst); err != nil {
			sendErr = fmt.Errorf("sending from %s: %w", src, err)
			break
		}
		mu.Lock()
		cnt.Query(len(b))
		mu.Unlock()
	}
	select {
	case <-time.After(f.Drain):
	case <-ctx.Done():
	}
	conn.Close()
	<-done
	return cnt, sendErr
}
