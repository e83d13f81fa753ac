// Package catchment measures which node users reach, the way Verfploeter
// does: it registers a measurement on every node (each listens on its
// anycast addresses), tells the senders to probe the operator's targets
// from the anycast address, collects what every node received, and
// merges it into a map of target prefix (/24, /48) to the node whose
// catchment it is in. Maps are kept in the store and two of them can be
// diffed (before and after a rollout wave). The node's half is package
// firmware/catchment.
package catchment

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
	"github.com/shoestring-dns/shoestring/firmware/api"
	node "github.com/shoestring-dns/shoestring/firmware/catchment"
)

// Bucket is where measurements are kept.
const Bucket = "catchment"

// Keep is how many measurements the store keeps (the oldest go).
const Keep = 50

// Measurement states.
const (
	Running = "running"
	Done    = "done"
	Failed  = "failed"
)

// Request starts a measurement.
type Request struct {
	// Targets are the addresses probed: the operator's list, never
	// expanded.
	Targets []string `json:"targets"`
	// Senders are the nodes that send probes; empty: one (the first
	// node, by name, that registered), as Verfploeter does; ["all"]:
	// every node.
	Senders []string `json:"senders,omitempty"`
	// Rate is probes per second per sender (each node caps it at its
	// catchment.rate).
	Rate int `json:"rate,omitempty"`
	// Linger is how long replies are awaited after the last probe
	// (default 2 s).
	Linger string `json:"linger,omitempty"`
	// DNS adds a DNS query to each target's port 53 besides the ICMP
	// echo (sent from the anycast address and a UDP port picked for the
	// measurement).
	DNS bool `json:"dns,omitempty"`
	// Label says why it was taken ("rollout r1 wave 1 before").
	Label string `json:"label,omitempty"`
}

// Measurement is one run across the fleet, as kept in the store.
type Measurement struct {
	ID       string    `json:"id"`
	Label    string    `json:"label,omitempty"`
	State    string    `json:"state"`
	Error    string    `json:"error,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Took is from the first registration to the last report.
	Took    string   `json:"took,omitempty"`
	Targets []string `json:"targets"`
	Rate    int      `json:"rate,omitempty"`
	// Nodes listened; Senders also sent. NodeErrors are the nodes that
	// could not take part, and why: their catchment is unknown.
	Nodes      []string          `json:"nodes"`
	Senders    []string          `json:"senders"`
	NodeErrors map[string]string `json:"node_errors,omitempty"`
	Sent       int               `json:"sent"`
	Replies    int               `json:"replies"`
	// DNSPort is the UDP port of the DNS probes (0: none); Probes counts
	// the replies by kind (icmp, dns).
	DNSPort  int            `json:"dns_port,omitempty"`
	Probes   map[string]int `json:"probes,omitempty"`
	Answered int            `json:"answered"` // targets with a reply
	// Unanswered lists up to 100 targets no node heard from.
	Unanswered []string `json:"unanswered,omitempty"`
	Map        []Row    `json:"map"`
}

// Row is one target prefix and the node whose catchment it is in.
type Row struct {
	Prefix string `json:"prefix"`
	Node   string `json:"node"`
	Site   string `json:"site,omitempty"`
	// Targets answered in the prefix; Split, when more than one node
	// received them, counts each node's targets.
	Targets int            `json:"targets"`
	Split   map[string]int `json:"split,omitempty"`
}

// Runner runs measurements, one at a time.
type Runner struct {
	KV     store.KV
	Nodes  func() ([]inventory.Node, error)
	Client live.Client
	Log    *slog.Logger

	mu      sync.Mutex
	running bool
}

func (r *Runner) client(addr string) *api.Client {
	if r.Client == nil {
		return live.DefaultClient(addr)
	}
	return r.Client(addr)
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

// Start begins a measurement and returns it running; Get follows it.
func (r *Runner) Start(req Request) (*Measurement, error) {
	m, nodes, linger, err := r.begin(req)
	if err != nil {
		return nil, err
	}
	go r.finish(context.Background(), m, req, nodes, linger)
	return m, nil
}

// Run runs a measurement to the end.
func (r *Runner) Run(ctx context.Context, req Request) (*Measurement, error) {
	m, nodes, linger, err := r.begin(req)
	if err != nil {
		return nil, err
	}
	r.finish(ctx, m, req, nodes, linger)
	if m.State == Failed {
		return m, errors.New(m.Error)
	}
	return m, nil
}

func (r *Runner) begin(req Request) (*Measurement, []inventory.Node, time.Duration, error) {
	if len(req.Targets) == 0 {
		return nil, nil, 0, errors.New("no targets: list the addresses to probe")
	}
	seen := map[netip.Addr]bool{}
	var targets []string
	for i, t := range req.Targets {
		a, err := netip.ParseAddr(strings.TrimSpace(t))
		if err != nil {
			return nil, nil, 0, fmt.Errorf("targets[%d] %q: not an address (prefixes are not expanded: list each target)", i, t)
		}
		if a = a.Unmap(); !seen[a] {
			seen[a] = true
			targets = append(targets, a.String())
		}
	}
	linger := 2 * time.Second
	if req.Linger != "" {
		d, err := time.ParseDuration(req.Linger)
		if err != nil || d < 0 || d > 5*time.Minute {
			return nil, nil, 0, fmt.Errorf("linger %q: want a duration up to 5m", req.Linger)
		}
		linger = d
	}
	nodes, err := r.Nodes()
	if err != nil {
		return nil, nil, 0, err
	}
	if len(nodes) == 0 {
		return nil, nil, 0, errors.New("no nodes in the inventory")
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	known := map[string]bool{}
	for _, n := range nodes {
		known[n.Name] = true
	}
	for _, s := range req.Senders {
		if s != "all" && !known[s] {
			return nil, nil, 0, fmt.Errorf("sender %q is not in the inventory", s)
		}
	}
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return nil, nil, 0, errors.New("a measurement is running; one at a time")
	}
	r.running = true
	r.mu.Unlock()
	m := &Measurement{ID: newID(), Label: req.Label, State: Running, Started: time.Now().UTC(), Targets: targets,
		Rate: req.Rate, NodeErrors: map[string]string{}, Map: []Row{}}
	if req.DNS {
		var b [2]byte
		rand.Read(b[:])
		m.DNSPort = 20000 + (int(b[0])<<8|int(b[1]))%40000
	}
	if err := r.save(m); err != nil {
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
		return nil, nil, 0, err
	}
	return m, nodes, linger, nil
}

func newID() string {
	b := make([]byte, 3)
	rand.Read(b)
	return "c" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// finish registers, sends, waits, collects and merges.
func (r *Runner) finish(ctx context.Context, m *Measurement, req Request, nodes []inventory.Node, linger time.Duration) {
	defer func() {
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
	}()
	err := r.measure(ctx, m, req, nodes, linger)
	m.Finished = time.Now().UTC()
	m.Took = m.Finished.Sub(m.Started).Round(time.Millisecond).String()
	m.State = Done
	if err != nil {
		m.State, m.Error = Failed, err.Error()
	}
	if err := r.save(m); err != nil {
		r.log().Error("catchment: saving", "id", m.ID, "err", err)
	}
	r.log().Info("catchment measured", "id", m.ID, "state", m.State, "targets", len(m.Targets), "answered", m.Answered, "took", m.Took, "err", m.Error)
}

func (r *Runner) measure(ctx context.Context, m *Measurement, req Request, nodes []inventory.Node, linger time.Duration) error {
	var mu sync.Mutex
	nodeErr := func(n inventory.Node, what string, err error) {
		mu.Lock()
		m.NodeErrors[n.Name] = what + ": " + err.Error()
		mu.Unlock()
	}
	each := func(ns []inventory.Node, f func(inventory.Node)) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for _, n := range ns {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				f(n)
			}()
		}
		wg.Wait()
	}
	// ask POSTs to every node of ns and returns those that took it, by
	// name; a refusal is the node's error under what.
	ask := func(ns []inventory.Node, what, path string, body any) []inventory.Node {
		var ok []inventory.Node
		each(ns, func(n inventory.Node) {
			if err := call(r.client(n.API), "POST", path, body, nil); err != nil {
				nodeErr(n, what, err)
				return
			}
			mu.Lock()
			ok = append(ok, n)
			mu.Unlock()
		})
		sort.Slice(ok, func(i, j int) bool { return ok[i].Name < ok[j].Name })
		return ok
	}
	// 1. Every node listens.
	reg := node.Request{ID: m.ID, Targets: m.Targets, Rate: req.Rate, DNSPort: m.DNSPort}
	listening := ask(nodes, "register", "/api/v1/catchment", reg)
	for _, n := range listening {
		m.Nodes = append(m.Nodes, n.Name)
	}
	if len(listening) == 0 {
		return errors.New("no node could take part (see node_errors)")
	}
	// Whatever happens next, the nodes stop recording.
	defer each(listening, func(n inventory.Node) {
		call(r.client(n.API), "POST", "/api/v1/catchment/"+url.PathEscape(m.ID)+"/stop", nil, nil)
	})
	// 2. The senders send.
	var senders []inventory.Node
	switch {
	case len(req.Senders) == 0:
		senders = listening[:1]
	case len(req.Senders) == 1 && req.Senders[0] == "all":
		senders = listening
	default:
		for _, n := range listening {
			for _, s := range req.Senders {
				if s == n.Name {
					senders = append(senders, n)
				}
			}
		}
		if len(senders) == 0 {
			return errors.New("none of the senders could take part (see node_errors)")
		}
	}
	sending := ask(senders, "send", "/api/v1/catchment/"+url.PathEscape(m.ID)+"/send", nil)
	for _, n := range sending {
		m.Senders = append(m.Senders, n.Name)
	}
	if len(sending) == 0 {
		return errors.New("no sender could send (see node_errors)")
	}
	r.save(m)
	// 3. Wait for every sender to finish, then for late replies.
	rate := req.Rate
	if rate <= 0 {
		rate = 100 // the nodes' default; a node with a lower cap takes longer, and says so
	}
	probes := len(m.Targets)
	if m.DNSPort != 0 {
		probes *= 2
	}
	deadline := time.Now().Add(time.Duration(probes)*time.Second/time.Duration(rate)*2 + 30*time.Second)
	for _, n := range sending {
		for {
			var list []node.Status
			err := call(r.client(n.API), "GET", "/api/v1/catchment", nil, &list)
			done := false
			for _, st := range list {
				if st.ID == m.ID {
					done = st.State == node.Sent || st.State == node.Stopped
				}
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				if err == nil {
					err = errors.New("still sending")
				}
				nodeErr(n, "send", fmt.Errorf("not finished by the deadline: %v", err))
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(linger):
	}
	// 4. Collect what every node received.
	var replies []node.Reply
	each(listening, func(n inventory.Node) {
		var st node.Status
		if err := call(r.client(n.API), "GET", "/api/v1/catchment/"+url.PathEscape(m.ID), nil, &st); err != nil {
			nodeErr(n, "collect", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		replies = append(replies, st.Replies...)
		for _, s := range m.Senders {
			if s == n.Name {
				m.Sent += st.Sent
			}
		}
		if st.SendErrors > 0 {
			m.NodeErrors[n.Name] = fmt.Sprintf("%d probes not sent: %s", st.SendErrors, st.LastError)
		}
	})
	site := map[string]string{}
	for _, n := range nodes {
		site[n.Name] = n.Site
	}
	m.Replies = len(replies)
	m.Probes = map[string]int{}
	for _, rp := range replies {
		m.Probes[rp.Probe]++
	}
	m.Map, m.Answered, m.Unanswered = Merge(m.Targets, replies, site)
	if len(m.NodeErrors) == 0 {
		m.NodeErrors = nil
	}
	return nil
}

// Prefix is the prefix a target is mapped by: its /24 (IPv4) or /48
// (IPv6).
func Prefix(a netip.Addr) netip.Prefix {
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, _ := a.Prefix(bits)
	return p
}

// Merge turns replies into rows, one per target prefix: the node that
// received the most of its targets (ties: the first by name), with the
// split when more than one did. A target counts once per receiving node.
func Merge(targets []string, replies []node.Reply, site map[string]string) (rows []Row, answered int, unanswered []string) {
	recv := map[string]map[string]bool{} // target -> receivers
	for _, rp := range replies {
		if recv[rp.Target] == nil {
			recv[rp.Target] = map[string]bool{}
		}
		recv[rp.Target][rp.Receiver] = true
	}
	byPrefix := map[netip.Prefix]map[string]int{}
	for _, t := range targets {
		a, err := netip.ParseAddr(t)
		if err != nil {
			continue
		}
		rs := recv[a.String()]
		if len(rs) == 0 {
			if len(unanswered) < 100 {
				unanswered = append(unanswered, t)
			}
			continue
		}
		answered++
		p := Prefix(a)
		if byPrefix[p] == nil {
			byPrefix[p] = map[string]int{}
		}
		for n := range rs {
			byPrefix[p][n]++
		}
	}
	for p, counts := range byPrefix {
		row := Row{Prefix: p.String()}
		for n, c := range counts {
			if c > row.Targets || c == row.Targets && n < row.Node {
				row.Node, row.Targets = n, c
			}
		}
		if len(counts) > 1 {
			row.Split = counts
		}
		row.Site = site[row.Node]
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := netip.MustParsePrefix(rows[i].Prefix), netip.MustParsePrefix(rows[j].Prefix)
		return a.Addr().Less(b.Addr())
	})
	return rows, answered, unanswered
}

// Change is a prefix whose node differs between two measurements.
type Change struct {
	Prefix string `json:"prefix"`
	From   string `json:"from"` // "" when it was not mapped
	To     string `json:"to"`   // "" when it is not mapped any more
}

// DiffReport compares two measurements' maps.
type DiffReport struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Same    int      `json:"same"`
	Changed []Change `json:"changed"`
	// Moved counts prefixes per "from → to" node pair.
	Moved map[string]int `json:"moved,omitempty"`
}

// Diff compares a (before) with b (after).
func Diff(a, b *Measurement) DiffReport {
	d := DiffReport{From: a.ID, To: b.ID, Changed: []Change{}}
	before := map[string]string{}
	for _, r := range a.Map {
		before[r.Prefix] = r.Node
	}
	after := map[string]string{}
	for _, r := range b.Map {
		after[r.Prefix] = r.Node
	}
	var prefixes []string
	for p := range before {
		prefixes = append(prefixes, p)
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			prefixes = append(prefixes, p)
		}
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		if before[p] == after[p] {
			d.Same++
			continue
		}
		d.Changed = append(d.Changed, Change{Prefix: p, From: before[p], To: after[p]})
		if d.Moved == nil {
			d.Moved = map[string]int{}
		}
		d.Moved[orNone(before[p])+" → "+orNone(after[p])]++
	}
	return d
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func (r *Runner) save(m *Measurement) error {
	if err := store.PutJSON(r.KV, Bucket, m.ID, m); err != nil {
		return err
	}
	all, err := r.KV.List(Bucket)
	if err != nil || len(all) <= Keep {
		return err
	}
	var ids []string
	for id := range all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids[:len(ids)-Keep] {
		r.KV.Delete(Bucket, id)
	}
	return nil
}

// Get returns a measurement.
func (r *Runner) Get(id string) (*Measurement, error) {
	var m Measurement
	if err := store.GetJSON(r.KV, Bucket, id, &m); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("measurement %s: not found", id)
		}
		return nil, err
	}
	return &m, nil
}

// All returns every measurement kept, newest first.
func (r *Runner) All() ([]*Measurement, error) {
	ms, err := store.ListJSON[*Measurement](r.KV, Bucket)
	if err != nil {
		return nil, err
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID > ms[j].ID })
	return ms, nil
}

// Latest returns the newest finished measurement, nil when none.
func (r *Runner) Latest() (*Measurement, error) {
	ms, err := r.All()
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.State == Done {
			return m, nil
		}
	}
	return nil, nil
}

// call makes a node API call with a JSON body.
func call(c *api.Client, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.Base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// ParseTargets reads a target list: one address a line, blank lines and
// '#' comments ignored. A prefix is an error: targets are listed, never
// expanded.
func ParseTargets(name string, b []byte) ([]string, error) {
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		a, err := netip.ParseAddr(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q is not an address (prefixes are not expanded: list each target)", name, i+1, line)
		}
		out = append(out, a.Unmap().String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no targets", name)
	}
	return out, nil
}

// ReadTargets reads a target list file (ParseTargets).
func ReadTargets(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseTargets(path, b)
}
