package lab

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/test/nslab"
)

// Client asks anycast addresses from a client namespace, over many UDP
// sockets: each has its own source port, so the router's port-aware
// multipath hash spreads them over the nodes.
type Client struct {
	socks []*net.UDPConn
	// Timeout is how long a query may take before it counts as failed
	// (QueryTimeout when 0). Set it before the first query.
	Timeout time.Duration
}

// NewClient opens perTarget sockets to each target's port 53 in the
// lab's client namespace.
func (l *Lab) NewClient(perTarget int, targets ...netip.Addr) (*Client, error) {
	return NewClientIn(l.ClientNS, perTarget, targets...)
}

// NewClientIn opens perTarget sockets to each target's port 53 in
// namespace ns: a client for any lab of namespaces, this package's or
// another test's.
func NewClientIn(ns string, perTarget int, targets ...netip.Addr) (*Client, error) {
	c := &Client{}
	err := nslab.InNS(ns, func() error {
		for _, t := range targets {
			for range perTarget {
				conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(t, 53)))
				if err != nil {
					return err
				}
				c.socks = append(c.socks, conn)
			}
		}
		return nil
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the sockets.
func (c *Client) Close() {
	for _, s := range c.socks {
		s.Close()
	}
}

// Result is one query's outcome.
type Result struct {
	Target     netip.Addr
	Sent, Done time.Time
	NSID       string // the node that answered
	Err        error
}

// QueryTimeout is how long a query may take before it counts as failed,
// unless the client says otherwise.
const QueryTimeout = time.Second

// query asks www.example.test A on sock and checks the reply: NOERROR,
// authoritative, with the record, and with an NSID saying who answered.
func (c *Client) query(sock *net.UDPConn) (r Result) {
	r = Result{Sent: time.Now()}
	if ap, err := netip.ParseAddrPort(sock.RemoteAddr().String()); err == nil {
		r.Target = ap.Addr()
	}
	// r is the named result, so the deferred stamp reaches the caller
	// (on a local copy it would be set after the return value was taken).
	defer func() { r.Done = time.Now() }()
	m := new(dns.Msg)
	m.SetQuestion("www."+Zone, dns.TypeA)
	m.RecursionDesired = false
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(1232)
	opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	m.Extra = append(m.Extra, opt)
	wire, err := m.Pack()
	if err != nil {
		r.Err = err
		return r
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = QueryTimeout
	}
	sock.SetDeadline(r.Sent.Add(timeout))
	if _, err := sock.Write(wire); err != nil {
		r.Err = err
		return r
	}
	buf := make([]byte, 2048)
	for {
		n, err := sock.Read(buf)
		if err != nil {
			r.Err = err
			return r
		}
		resp := new(dns.Msg)
		if resp.Unpack(buf[:n]) != nil || resp.Id != m.Id {
			continue // a late reply to an earlier query on this socket
		}
		switch {
		case resp.Rcode != dns.RcodeSuccess:
			r.Err = fmt.Errorf("rcode %s", dns.RcodeToString[resp.Rcode])
		case !resp.Authoritative || len(resp.Answer) == 0:
			r.Err = errors.New("no authoritative answer")
		}
		if o := resp.IsEdns0(); o != nil {
			for _, op := range o.Option {
				if ns, ok := op.(*dns.EDNS0_NSID); ok {
					b, _ := hex.DecodeString(ns.Nsid)
					r.NSID = string(b)
				}
			}
		}
		return r
	}
}

// Once sends one query on every socket, concurrently, and returns the
// results.
func (c *Client) Once() []Result {
	out := make([]Result, len(c.socks))
	var wg sync.WaitGroup
	for i, s := range c.socks {
		wg.Go(func() { out[i] = c.query(s) })
	}
	wg.Wait()
	return out
}

// Load sends queries at a steady rate, each on whichever socket is free,
// until Stop.
type Load struct {
	c    *Client
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	res  []Result
	// skipped counts ticks at which every socket was busy.
	skipped int
}

// StartLoad starts qps queries per second over the client's sockets.
func (c *Client) StartLoad(qps int) *Load {
	ld := &Load{c: c, stop: make(chan struct{})}
	tokens := make(chan struct{})
	for _, s := range c.socks {
		ld.wg.Go(func() {
			for {
				select {
				case <-ld.stop:
					return
				case <-tokens:
				}
				r := c.query(s)
				ld.mu.Lock()
				ld.res = append(ld.res, r)
				ld.mu.Unlock()
			}
		})
	}
	ld.wg.Go(func() {
		t := time.NewTicker(time.Second / time.Duration(qps))
		defer t.Stop()
		for {
			select {
			case <-ld.stop:
				return
			case <-t.C:
				select {
				case tokens <- struct{}{}:
				default:
					ld.mu.Lock()
					ld.skipped++
					ld.mu.Unlock()
				}
			}
		}
	})
	return ld
}

// Stop ends the load, waits for queries in flight, and returns every
// result in the order the queries were sent.
func (ld *Load) Stop() []Result {
	close(ld.stop)
	ld.wg.Wait()
	return ld.Results()
}

// Results is what has completed so far, in the order the queries were
// sent.
func (ld *Load) Results() []Result {
	ld.mu.Lock()
	out := slices.Clone(ld.res)
	ld.mu.Unlock()
	slices.SortFunc(out, func(a, b Result) int { return a.Sent.Compare(b.Sent) })
	return out
}

// Since returns how many queries sent after t have completed (answered or
// failed), and how many of those each node answered.
func (ld *Load) Since(t time.Time) (done int, by map[string]int) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	by = map[string]int{}
	for _, r := range ld.res {
		if r.Sent.After(t) {
			done++
			if r.Err == nil {
				by[r.NSID]++
			}
		}
	}
	return done, by
}

// Skipped is how many queries could not be sent because every socket was
// waiting for an answer.
func (ld *Load) Skipped() int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.skipped
}
