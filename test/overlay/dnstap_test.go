package overlay

import (
	"fmt"
	"sync"
	"testing"
	"time"

	dt "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"

	"github.com/shoestring-dns/shoestring/firmware/overlay"
)

// collector is a dnstap collector listening on a tailnet member, decoding
// with the dnstap project's own reader (Frame Streams, bidirectional).
type collector struct {
	mu   sync.Mutex
	msgs []*dt.Dnstap
}

func startCollector(t *testing.T, tn *overlay.Tailnet, port int) *collector {
	t.Helper()
	ln, err := tn.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := &collector{}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
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
			}()
		}
	}()
	return c
}

// waitFor waits for an AUTH_RESPONSE from identity to a question for name
// with the given rcode, with its query alongside.
func (c *collector) waitFor(t *testing.T, identity, name string, rcode int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		msgs := append([]*dt.Dnstap(nil), c.msgs...)
		c.mu.Unlock()
		sawQuery := false
		for _, m := range msgs {
			msg := m.GetMessage()
			if string(m.GetIdentity()) != identity || msg == nil {
				continue
			}
			q := new(dns.Msg)
			if q.Unpack(msg.GetQueryMessage()) != nil || len(q.Question) == 0 || q.Question[0].Name != name {
				continue
			}
			switch msg.GetType() {
			case dt.Message_AUTH_QUERY:
				sawQuery = true
			case dt.Message_AUTH_RESPONSE:
				r := new(dns.Msg)
				if r.Unpack(msg.GetResponseMessage()) == nil && r.Rcode == rcode && sawQuery && len(msg.GetQueryAddress()) > 0 {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.mu.Lock()
	n := len(c.msgs)
	c.mu.Unlock()
	t.Fatalf("collector never got %s's query and %s response for %s (%d messages in all)", identity, dns.RcodeToString[rcode], name, n)
}
