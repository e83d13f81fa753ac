package tenant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// A tenant in a network namespace of its own has nothing to connect out
// with, yet its secondary zones (transfers, SOA queries) and its dnstap
// output need connections: its host opens them for it. The supervisor
// passes each such tenant process one end of a socketpair (after its
// control socket, child.go) and serves the other end for as long as the
// process lives. To connect, the tenant sends one message on it — the
// request (network, address, source, time left) as JSON — with one end of
// a new socketpair of its own attached (SCM_RIGHTS). The host answers on
// that socketpair, once: an error, or the connected socket itself,
// attached. A socketpair per request keeps requests apart: any number at
// once, no request IDs, and a tenant that gives up (its context ended,
// or it died) closes its end, which stops the host's dial. The sockets
// are SOCK_SEQPACKET: a request or a reply is one message, whole, with
// its descriptor.
//
// The host dials only what the tenant's config names
// (config.Tenant.Dials: its primaries, its dnstap collector), from its own
// network namespace, so that routing, source addresses and the host's
// firewall apply as to the host itself. The tenant still binds and
// listens on nothing (seccomp.go): what it receives is a socket already
// connected to an address its config names.

// maxDialRequest bounds a request (one is about 100 bytes); a longer one
// is malformed.
const maxDialRequest = 1024

// maxDialReply bounds a reply: an error message.
const maxDialReply = 4096

// maxDialsAtOnce is how many connections the host makes for one tenant
// process at once; a tenant asking for more is refused, not queued.
const maxDialsAtOnce = 32

// dialRequest is what the tenant asks for.
type dialRequest struct {
	Network string `json:"network"`          // "tcp" or "udp"
	Address string `json:"address"`          // "IP:PORT"
	Source  string `json:"source,omitempty"` // IP; empty: the kernel's choice
	// TimeoutMS is what is left of the tenant's deadline, in
	// milliseconds; 0: none (the tenant closing its end still stops it).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// dialReply is the host's answer; the socket, when there is one, is
// attached to it.
type dialReply struct {
	Error string `json:"error,omitempty"`
}

// target is the request as the connection it asks for.
func (r dialRequest) target() (config.TenantDial, error) {
	d := config.TenantDial{Network: r.Network}
	if r.Network != "tcp" && r.Network != "udp" {
		return d, fmt.Errorf("network %q: want tcp or udp", r.Network)
	}
	ap, err := netip.ParseAddrPort(r.Address)
	if err != nil {
		return d, fmt.Errorf("address %q: want IP:PORT", r.Address)
	}
	d.Addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if r.Source != "" {
		if d.Source, err = netip.ParseAddr(r.Source); err != nil {
			return d, fmt.Errorf("source %q: want an IP address", r.Source)
		}
		d.Source = d.Source.Unmap()
	}
	return d, nil
}

// broker is the host's end of one tenant process's dial broker.
type broker struct {
	tenant  string
	allowed map[config.TenantDial]bool
	conn    *net.UnixConn
	slots   chan struct{} // dials in progress
	log     *slog.Logger
}

// startBroker makes the socketpair and serves the host's end until Close,
// or until every copy of the tenant's end is closed (its process ended).
// The tenant's end is returned for the process to inherit; the caller
// closes its own copy.
func startBroker(tenant string, allowed []config.TenantDial, log *slog.Logger) (*broker, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("dial broker: %w", err)
	}
	conn, err := unixConn(os.NewFile(uintptr(fds[0]), "dial broker"))
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	b := &broker{tenant: tenant, allowed: map[config.TenantDial]bool{}, conn: conn, slots: make(chan struct{}, maxDialsAtOnce), log: log}
	for _, d := range allowed {
		// As target normalises what the tenant asks for.
		d.Addr = netip.AddrPortFrom(d.Addr.Addr().Unmap(), d.Addr.Port())
		d.Source = d.Source.Unmap()
		b.allowed[d] = true
	}
	go b.serve()
	return b, os.NewFile(uintptr(fds[1]), "dial broker"), nil
}

// Close stops taking requests; dials in progress end when the tenant's
// ends of them are closed (at the latest when its process is gone).
func (b *broker) Close() { b.conn.Close() }

// serve reads requests, each answered by a goroutine of its own.
func (b *broker) serve() {
	buf := make([]byte, maxDialRequest)
	oob := make([]byte, unix.CmsgSpace(4)) // one descriptor; the kernel drops more
	for {
		n, oobn, flags, _, err := b.conn.ReadMsgUnix(buf, oob)
		fds := receivedFDs(oob[:oobn])
		if err != nil && (len(fds) == 0 || !errors.Is(err, io.EOF)) {
			// Closed by Close, or every copy of the tenant's end is
			// (its process ended). An empty message, which reads
			// as EOF too, is a malformed request if it carries a
			// reply socket: answered below.
			closeFDs(fds)
			return
		}
		if len(fds) != 1 || flags&unix.MSG_CTRUNC != 0 {
			closeFDs(fds)
			b.log.Warn("dial broker: a request without exactly one reply socket attached, ignored (no way to answer it)", "tenant", b.tenant)
			continue
		}
		reply, err := unixConn(os.NewFile(uintptr(fds[0]), "dial reply"))
		if err != nil {
			b.log.Warn("dial broker: a request whose reply descriptor is no unix socket, ignored", "tenant", b.tenant, "err", err)
			continue
		}
		go b.answer(bytes.Clone(buf[:n]), flags&unix.MSG_TRUNC != 0, reply)
	}
}

// answer dials what msg asks for and replies with the socket or the
// reason there is none.
func (b *broker) answer(msg []byte, truncated bool, reply *net.UnixConn) {
	defer reply.Close()
	conn, err := b.dial(msg, truncated, reply)
	if err != nil {
		// A failed dial is the tenant's to report (its secondary
		// status, its log); a refusal is the host's too (b.dial logs it).
		sendDialReply(reply, err.Error(), -1)
		return
	}
	defer conn.Close() // the tenant holds its own copy once it is sent
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) { err = sendDialReply(reply, "", int(fd)) })
		err = errors.Join(cerr, err)
	}
	if err != nil {
		// The tenant gave up in the meantime: its end is closed.
		b.log.Debug("dial broker: the connection made could not be passed", "tenant", b.tenant, "to", conn.RemoteAddr(), "err", err)
	}
}

// dial checks msg against what the tenant may reach and connects, for at
// most the time the tenant waits: until its deadline, or until it closes
// its end of reply.
func (b *broker) dial(msg []byte, truncated bool, reply *net.UnixConn) (net.Conn, error) {
	refuse := func(format string, args ...any) (net.Conn, error) {
		err := fmt.Errorf("tenant %s "+format, append([]any{b.tenant}, args...)...)
		b.log.Warn("dial broker: refused", "tenant", b.tenant, "err", err)
		return nil, err
	}
	select {
	case b.slots <- struct{}{}:
		defer func() { <-b.slots }()
	default:
		return refuse("has %d connections being made for it already", maxDialsAtOnce)
	}
	var req dialRequest
	if truncated || json.Unmarshal(msg, &req) != nil {
		return refuse("sent a malformed dial request %.120q", msg)
	}
	d, err := req.target()
	if err != nil {
		return refuse("sent a bad dial request: %w", err)
	}
	if !b.allowed[d] {
		return refuse("may not connect to %s: not one of its primaries or its dnstap collector", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if req.TimeoutMS > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMS)*time.Millisecond)
		defer cancel()
	}
	go func() {
		// Returns when the tenant closes its end (it gave up, or
		// died), or when answer closes reply.
		reply.Read(make([]byte, 1))
		cancel()
	}()
	var dialer net.Dialer
	if d.Source.IsValid() {
		src := netip.AddrPortFrom(d.Source, 0)
		if d.Network == "tcp" {
			dialer.LocalAddr = net.TCPAddrFromAddrPort(src)
		} else {
			dialer.LocalAddr = net.UDPAddrFromAddrPort(src)
		}
	}
	c, err := dialer.DialContext(ctx, d.Network, d.Addr.String())
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", b.tenant, err)
	}
	return c, nil
}

// sendDialReply sends the reply, with fd attached unless it is -1.
func sendDialReply(c *net.UnixConn, errText string, fd int) error {
	msg, _ := json.Marshal(dialReply{Error: errText})
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	_, _, err := c.WriteMsgUnix(msg, oob, nil)
	return err
}

// brokerDialer is the tenant's end: it has the host connect for it. Its
// Dial and DialFrom are an xfr.DialFunc and an xfr.DialFromFunc (and
// dnstap's Dial).
type brokerDialer struct {
	conn *net.UnixConn
}

// newBrokerDialer takes over f, the tenant's end.
func newBrokerDialer(f *os.File) (*brokerDialer, error) {
	c, err := unixConn(f)
	if err != nil {
		return nil, err
	}
	return &brokerDialer{conn: c}, nil
}

// Dial connects to addr, from an address the host's kernel chooses.
func (d *brokerDialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return d.DialFrom(ctx, network, netip.Addr{}, addr)
}

// DialFrom connects to addr from source (an address of the host), or
// from one the host's kernel chooses when source is the zero value.
func (d *brokerDialer) DialFrom(ctx context.Context, network string, source netip.Addr, addr string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dial broker: %w", err)
	}
	reply, err := unixConn(os.NewFile(uintptr(fds[0]), "dial reply"))
	if err != nil {
		unix.Close(fds[1])
		return nil, err
	}
	defer reply.Close() // tells the host to stop, if it is still dialling
	req := dialRequest{Network: network, Address: addr}
	if source.IsValid() {
		req.Source = source.String()
	}
	if dl, ok := ctx.Deadline(); ok {
		// Rounded up: the host's dial ends no sooner than ctx does.
		req.TimeoutMS = max(int64((time.Until(dl)+time.Millisecond-1)/time.Millisecond), 1)
	}
	// The context's end wakes the wait for the reply below.
	stop := context.AfterFunc(ctx, func() { reply.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	msg, _ := json.Marshal(req)
	err = d.send(msg, unix.UnixRights(fds[1]))
	unix.Close(fds[1]) // in flight, the host gets its own copy
	if err != nil {
		return nil, fmt.Errorf("dial broker: %w", err)
	}
	buf, oob := make([]byte, maxDialReply), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := reply.ReadMsgUnix(buf, oob)
	got := receivedFDs(oob[:oobn])
	var rep dialReply
	switch {
	case err != nil && ctx.Err() != nil:
		err = fmt.Errorf("dial %s %s through the host: %w", network, addr, ctx.Err())
	case err != nil:
		err = fmt.Errorf("dial broker: %w", err)
	case n == 0:
		err = errors.New("dial broker: the host closed the request unanswered")
	case json.Unmarshal(buf[:n], &rep) != nil:
		err = fmt.Errorf("dial broker: the host's reply %.120q is not one", buf[:n])
	case rep.Error != "":
		err = errors.New(rep.Error)
	case len(got) != 1:
		err = errors.New("dial broker: the host's reply carries no socket")
	}
	if err != nil {
		closeFDs(got)
		cerr := ctx.Err()
		if dl, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(dl) {
			// Past the deadline, whose timer has not fired yet: the
			// host's reply can come first (its dial ends with the
			// same deadline, sent rounded up).
			cerr = context.DeadlineExceeded
		}
		if cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", err, cerr)
		}
		return nil, err
	}
	f := os.NewFile(uintptr(got[0]), network+" "+addr)
	defer f.Close() // FileConn has its own copy
	return net.FileConn(f)
}

// send sends one request without waiting: the host reads every request
// at once, so a full socket means it is not reading, and a dial waiting
// for it would outlast its context.
func (d *brokerDialer) send(msg, oob []byte) error {
	raw, err := d.conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) { serr = unix.Sendmsg(int(fd), msg, oob, nil, unix.MSG_DONTWAIT) })
	if errors.Is(serr, unix.EAGAIN) {
		serr = errors.New("the host is not taking requests")
	}
	return errors.Join(err, serr)
}

// unixConn makes a *net.UnixConn of a unix socket's file, which it
// closes.
func unixConn(f *os.File) (*net.UnixConn, error) {
	defer f.Close() // FileConn has its own copy
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("%s: not a unix socket", f.Name())
	}
	return uc, nil
}

// receivedFDs are the descriptors attached to a message (SCM_RIGHTS).
func receivedFDs(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if f, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
