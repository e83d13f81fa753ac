package overlay

import (
	"fmt"
	"testing"
	"time"

	dt "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/overlay"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// collector is a dnstap collector listening on a tailnet member.
type collector struct {
	*refserver.DnstapCollector
}

func startCollector(t *testing.T, tn *overlay.Tailnet, port int) *collector {
	t.Helper()
	ln, err := tn.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &collector{refserver.ServeDnstap(ln)}
}

// waitFor waits for an AUTH_RESPONSE from identity to a question for name
// with the given rcode, with its query alongside.
func (c *collector) waitFor(t *testing.T, identity, name string, rcode int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		msgs := c.Messages()
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
	n := c.Count()
	t.Fatalf("collector never got %s's query and %s response for %s (%d messages in all)", identity, dns.RcodeToString[rcode], name, n)
}
