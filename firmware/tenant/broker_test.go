package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// startTestBroker serves a broker for tenant "t1" that allows allowed,
// and returns it with the tenant's end and the host's log.
func startTestBroker(t *testing.T, allowed ...config.TenantDial) (*broker, *brokerDialer, *testenv.SyncBuffer) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	b, f, err := startBroker("t1", allowed, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	d, err := newBrokerDialer(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		d.conn.Close()
	})
	return b, d, logs
}

// echo serves TCP or UDP on loopback, answering what it reads, and
// sends every TCP peer's address to peers.
func echo(t *testing.T, network string) (netip.AddrPort, chan netip.AddrPort) {
	t.Helper()
	peers := make(chan netip.AddrPort, 16)
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 512)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(buf[:n], from)
			}
		}()
		return pc.LocalAddr().(*net.UDPAddr).AddrPort(), peers
	}
	tcp := testenv.ServeTCP(t, func(c net.Conn) {
		peers <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
		// Not io.Copy: its splice keeps pipes open, which
		// TestBrokerNoLeak would count.
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			c.Write(buf[:n])
		}
	})
	return tcp, peers
}

// roundTrip writes to c and expects it back.
func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("echo: %q, %v", buf[:n], err)
	}
}

// TestBrokerDials: an address the tenant's config names is dialled by
// the host and the tenant gets a working connection — TCP, connected
// UDP, and TCP from a source address, which the server sees.
func TestBrokerDials(t *testing.T) {
	tcp, peers := echo(t, "tcp")
	udp, _ := echo(t, "udp")
	src := netip.MustParseAddr("127.0.0.2") // loopback: any of 127/8 is ours
	_, d, _ := startTestBroker(t,
		config.TenantDial{Network: "tcp", Addr: tcp},
		config.TenantDial{Network: "udp", Addr: udp},
		config.TenantDial{Network: "tcp", Addr: tcp, Source: src})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []struct {
		network string
		to      netip.AddrPort
		from    netip.Addr
	}{{"tcp", tcp, netip.Addr{}}, {"udp", udp, netip.Addr{}}, {"tcp", tcp, src}} {
		conn, err := d.DialFrom(ctx, c.network, c.from, c.to.String())
		if err != nil {
			t.Fatalf("%s %s from %v: %v", c.network, c.to, c.from, err)
		}
		if got := conn.RemoteAddr().String(); got != c.to.String() {
			t.Errorf("%s: connected to %s, want %s", c.network, got, c.to)
		}
		roundTrip(t, conn)
		conn.Close()
		if c.network == "tcp" {
			if p := <-peers; c.from.IsValid() && p.Addr() != c.from {
				t.Errorf("the server saw %v, want source %v", p, c.from)
			}
		}
	}
}

// TestBrokerRefuses: anything the tenant's config does not name is
// refused, with the tenant and the address in the error (and in the
// host's log); nothing is dialled.
func TestBrokerRefuses(t *testing.T) {
	tcp, peers := echo(t, "tcp")
	udp, _ := echo(t, "udp")
	_, d, logs := startTestBroker(t, config.TenantDial{Network: "udp", Addr: udp})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []struct {
		network, addr string
		from          netip.Addr
		want          string
	}{
		{"tcp", tcp.String(), netip.Addr{}, "tenant t1 may not connect to tcp " + tcp.String() + ": not one of its primaries"},
		{"tcp", udp.String(), netip.Addr{}, "tenant t1 may not connect to tcp " + udp.String()},
		{"udp", udp.String(), netip.MustParseAddr("127.0.0.2"), "tenant t1 may not connect to udp " + udp.String() + " from 127.0.0.2"},
		{"unix", "/run/x.sock", netip.Addr{}, `tenant t1 sent a bad dial request: network "unix"`},
		{"tcp", "localhost:53", netip.Addr{}, `address "localhost:53": want IP:PORT`},
	} {
		conn, err := d.DialFrom(ctx, c.network, c.from, c.addr)
		if err == nil {
			conn.Close()
			t.Errorf("%s %s allowed", c.network, c.addr)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want %q", c.network, c.addr, err, c.want)
		}
	}
	if log := logs.String(); !strings.Contains(log, "refused") || !strings.Contains(log, "tenant=t1") || !strings.Contains(log, tcp.String()) {
		t.Errorf("the host's log:\n%s", log)
	}
	select {
	case p := <-peers:
		t.Errorf("the refused address was dialled (from %v)", p)
	default:
	}
}

// request sends body on the tenant's end as a raw request, with a reply
// socket attached when attach, and returns the tenant's end of that.
func request(t *testing.T, d *brokerDialer, body string, attach bool) *net.UnixConn {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := unixConn(os.NewFile(uintptr(fds[0]), "reply"))
	if err != nil {
		t.Fatal(err)
	}
	var oob []byte
	if attach {
		oob = unix.UnixRights(fds[1])
	}
	_, _, err = d.conn.WriteMsgUnix([]byte(body), oob, nil)
	unix.Close(fds[1])
	if err != nil {
		t.Fatal(err)
	}
	return reply
}

// replyOf reads the host's reply to a raw request.
func replyOf(t *testing.T, reply *net.UnixConn, within time.Duration) dialReply {
	t.Helper()
	reply.SetReadDeadline(time.Now().Add(within))
	buf, oob := make([]byte, maxDialReply), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := reply.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	if fds := receivedFDs(oob[:oobn]); len(fds) > 0 {
		closeFDs(fds)
		t.Errorf("a socket with the reply %q", buf[:n])
	}
	var r dialReply
	if err := json.Unmarshal(buf[:n], &r); err != nil {
		t.Fatalf("reply %q: %v", buf[:n], err)
	}
	return r
}

// TestBrokerMalformed: a request that is not one is answered with an
// error; one without a reply socket cannot be answered and is dropped;
// the host goes on serving either way.
func TestBrokerMalformed(t *testing.T) {
	tcp, _ := echo(t, "tcp")
	_, d, _ := startTestBroker(t, config.TenantDial{Network: "tcp", Addr: tcp})
	for _, body := range []string{"not json", "", `{"network": 1}`, strings.Repeat("x", 2*maxDialRequest)} {
		reply := request(t, d, body, true)
		r := replyOf(t, reply, 5*time.Second)
		reply.Close()
		if !strings.Contains(r.Error, "tenant t1 sent a malformed dial request") {
			t.Errorf("%.20q: reply %+v", body, r)
		}
	}
	request(t, d, `{"network":"tcp","address":"`+tcp.String()+`"}`, false).Close()
	conn, err := d.Dial(context.Background(), "tcp", tcp.String())
	if err != nil {
		t.Fatalf("after malformed requests: %v", err)
	}
	roundTrip(t, conn)
	conn.Close()
}

// blackhole is a TCP address on loopback whose SYNs are dropped: a
// listener with a backlog of 0 whose queue is full and never accepted.
func blackhole(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	for range 3 {
		if c, err := net.DialTimeout("tcp", ap.String(), 200*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return ap
}

// TestBrokerContext: a tenant's deadline bounds the host's dial (sent
// with the request, it ends the host's dial even while the tenant
// waits), and a tenant that gives up stops it; the host's dial slot is
// free again either way.
func TestBrokerContext(t *testing.T) {
	hole := blackhole(t)
	b, d, _ := startTestBroker(t, config.TenantDial{Network: "tcp", Addr: hole})
	idle := func(what string) {
		t.Helper()
		for start := time.Now(); len(b.slots) > 0; time.Sleep(10 * time.Millisecond) {
			if time.Since(start) > 2*time.Second {
				t.Fatalf("%s: the host still dials", what)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := d.Dial(ctx, "tcp", hole.String())
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 2*time.Second {
		t.Fatalf("deadline 300ms: %v after %s", err, took)
	}
	idle("after the deadline")

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	_, err = d.Dial(ctx, "tcp", hole.String())
	if took := time.Since(start); !errors.Is(err, context.Canceled) || took > 2*time.Second {
		t.Fatalf("cancelled after 200ms: %v after %s", err, took)
	}
	idle("after the cancel")

	// The host's side alone: the deadline sent ends its dial while the
	// tenant is still waiting for the reply.
	reply := request(t, d, `{"network":"tcp","address":"`+hole.String()+`","timeout_ms":300}`, true)
	defer reply.Close()
	if r := replyOf(t, reply, 3*time.Second); !strings.Contains(r.Error, "tenant t1: dial tcp "+hole.String()) || !strings.Contains(r.Error, "timeout") {
		t.Errorf("the host's dial past the deadline: %+v", r)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	return len(ents)
}

// TestBrokerNoLeak: dials that succeed, are refused, are malformed and
// time out leave no descriptor and no goroutine behind on either side
// once their connections and the tenant's end are closed.
func TestBrokerNoLeak(t *testing.T) {
	tcp, _ := echo(t, "tcp")
	udp, _ := echo(t, "udp")
	hole := blackhole(t)
	before := openFDs(t)
	b, f, err := startBroker("t1", []config.TenantDial{{Network: "tcp", Addr: tcp}, {Network: "udp", Addr: udp}, {Network: "tcp", Addr: hole}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d, err := newBrokerDialer(f)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for _, c := range [][2]string{{"tcp", tcp.String()}, {"udp", udp.String()}} {
			conn, err := d.Dial(context.Background(), c[0], c[1])
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, conn)
			conn.Close()
		}
		if _, err := d.Dial(context.Background(), "tcp", "127.0.0.1:1"); err == nil {
			t.Fatal("refused address dialled")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		d.Dial(ctx, "tcp", hole.String())
		cancel()
		request(t, d, "not json", true).Close()
		request(t, d, "{}", false).Close()
	}
	// The tenant's end closed (its process gone): the host's broker
	// ends without being closed.
	d.conn.Close()
	for start := time.Now(); brokerGoroutines() > 0; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 3*time.Second {
			t.Fatalf("the host's broker still runs after the tenant's end was closed")
		}
	}
	b.Close()
	var after int
	for start := time.Now(); time.Since(start) < 3*time.Second; time.Sleep(20 * time.Millisecond) {
		if after = openFDs(t); after == before {
			return
		}
	}
	t.Errorf("%d descriptors open before, %d after", before, after)
}

// brokerGoroutines counts the goroutines in the host's broker code.
func brokerGoroutines() int {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	return strings.Count(stacks, "tenant.(*broker).")
}
