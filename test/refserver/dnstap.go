package refserver

import (
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	dt "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"
)

// DnstapCollector is the other end of a node's dnstap stream: it accepts
// connections on a listener and decodes them with the dnstap project's
// own reader (Frame Streams, bidirectional), keeping every message. The
// listener may be anywhere a test needs it: loopback, a tailnet member.
type DnstapCollector struct {
	mu   sync.Mutex
	msgs []*dt.Dnstap
}

// ServeDnstap collects from every connection ln accepts until ln is
// closed.
func ServeDnstap(ln net.Listener) *DnstapCollector {
	c := &DnstapCollector{}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go c.read(conn)
		}
	}()
	return c
}

func (c *DnstapCollector) read(conn net.Conn) {
	defer conn.Close()
	in, err := dt.NewFrameStreamInputTimeout(conn, true, 10*time.Second)
	if err != nil {
		return
	}
	frames := make(chan []byte, 64)
	go func() { in.ReadInto(frames); close(frames) }()
	for f := range frames {
		m := new(dt.Dnstap)
		if proto.Unmarshal(f, m) == nil {
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}
}

// Messages is every message received so far, in order.
func (c *DnstapCollector) Messages() []*dt.Dnstap {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// Count is how many messages have been received.
func (c *DnstapCollector) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// Saw reports whether identity sent a message of type typ whose query
// asks for qname.
func (c *DnstapCollector) Saw(identity, qname string, typ dt.Message_Type) bool {
	for _, m := range c.Messages() {
		msg := m.GetMessage()
		if string(m.GetIdentity()) != identity || msg.GetType() != typ {
			continue
		}
		q := new(dns.Msg)
		if q.Unpack(msg.GetQueryMessage()) == nil && len(q.Question) > 0 && q.Question[0].Name == qname {
			return true
		}
	}
	return false
}

// Identities lists the dnstap identities seen, sorted, comma-separated.
func (c *DnstapCollector) Identities() string {
	seen := map[string]bool{}
	for _, m := range c.Messages() {
		seen[string(m.GetIdentity())] = true
	}
	return strings.Join(slices.Sorted(maps.Keys(seen)), ",")
}
