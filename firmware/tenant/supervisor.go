package tenant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/routing"
)

// Options configure the supervisor.
type Options struct {
	Config config.Tenants
	// Routing is the host's: it puts the tenants' addresses on lo and
	// announces their prefixes (routing.StartHost first).
	Routing *routing.Routing
	// Binary is our own executable, run as each tenant; default: this
	// process's.
	Binary string
	Log    *slog.Logger
}

// Supervisor runs the tenants.
type Supervisor struct {
	opts  Options
	log   *slog.Logger
	cg    cgroups
	cgErr error
	spawn *spawner // forks tenants (spawn.go)
	// tenantCPUs are the cores the host had before tenants.host_cpuset
	// confined it, handed to its tenants; "" when it was not.
	tenantCPUs string

	mu      sync.Mutex // tenants, state; held across add and remove
	tenants map[string]*tenant
	state   *state
}

// ErrNotFound is returned for a tenant that does not exist.
var ErrNotFound = errors.New("no such tenant")

// ErrConflict is returned for an add that differs from the tenant that
// exists, or a remove of a tenant the config file defines.
var ErrConflict = errors.New("conflict")

// New prepares the tenants' directory and cgroup; Run starts the tenants.
func New(opts Options) (*Supervisor, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		opts.Binary = exe
	}
	if err := checkStatic(opts.Binary); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Config.Dir, 0o711); err != nil {
		return nil, err
	}
	st, err := loadState(opts.Config.Dir)
	if err != nil {
		return nil, err
	}
	s := &Supervisor{opts: opts, log: opts.Log, tenants: map[string]*tenant{}, state: st, spawn: newSpawner()}
	if l := opts.Config.HostCpuset; l != "" {
		before, err := confineHost(l)
		if err != nil {
			return nil, err
		}
		s.tenantCPUs = formatCPUs(before)
		s.log.Info("the host runs on its own cores", "host_cpuset", l, "tenants", s.tenantCPUs)
	}
	s.cg, s.cgErr = openCgroups(opts.Config.Cgroup)
	if s.cgErr != nil {
		s.log.Error("tenants run without cgroup limits", "err", s.cgErr)
	}
	return s, nil
}

// Run starts the config file's tenants and the ones added through the
// API before, and stops them all (drained) when ctx ends.
func (s *Supervisor) Run(ctx context.Context) error {
	all := append(slices.Clone(s.opts.Config.List), s.state.Added...)
	if err := config.CheckTenants(all); err != nil {
		return err
	}
	s.mu.Lock()
	for i, t := range all {
		if err := s.startLocked(t, i < len(s.opts.Config.List), nil); err != nil {
			s.log.Error("tenant not started", "tenant", t.Name, "err", err)
		}
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range s.tenants {
		wg.Go(func() { t.stop(true) })
	}
	wg.Wait()
	return nil
}

// AddRequest is a tenant to add, with its zones' text by origin.
type AddRequest struct {
	config.Tenant
	ZoneText map[string]string `json:"zone_text,omitempty"`
}

// Add starts a new tenant; the same tenant added again changes nothing
// (changed false). A tenant of that name with another spec is
// ErrConflict.
func (s *Supervisor) Add(req AddRequest) (st Status, changed bool, err error) {
	req.SetDefaults()
	if err := req.Check(); err != nil {
		return st, false, err
	}
	zones := map[string][]byte{}
	for o, text := range req.ZoneText {
		o = dns.CanonicalName(o)
		if _, ok := dns.IsDomainName(o); !ok || strings.Contains(o, "/") {
			return st, false, fmt.Errorf("tenant %s: zone %q: bad origin", req.Name, o)
		}
		zones[o] = []byte(text)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tenants[req.Name]; ok {
		if !reflect.DeepEqual(t.spec, req.Tenant) || !t.sameZones(zones) {
			return st, false, fmt.Errorf("tenant %s exists with another spec or other zones; remove it first: %w", req.Name, ErrConflict)
		}
		return t.status(), false, nil
	}
	all := []config.Tenant{req.Tenant}
	for _, t := range s.tenants {
		all = append(all, t.spec)
	}
	if err := config.CheckTenants(all); err != nil {
		return st, false, err
	}
	if err := s.startLocked(req.Tenant, false, zones); err != nil {
		return st, false, err
	}
	s.state.Added = append(s.state.Added, req.Tenant)
	if err := s.state.save(); err != nil {
		s.log.Error("saving tenants", "err", err)
	}
	return s.tenants[req.Name].status(), true, nil
}

// Remove drains a tenant (GRACEFUL_SHUTDOWN, wait, withdraw), stops it
// and removes what it had: addresses, sockets, cgroup, root, uid, and its
// data unless keepData.
func (s *Supervisor) Remove(name string, keepData bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[name]
	if !ok {
		return fmt.Errorf("tenant %s: %w", name, ErrNotFound)
	}
	if t.fromConfig {
		return fmt.Errorf("tenant %s is in the config file; remove it there: %w", name, ErrConflict)
	}
	t.stop(true)
	var errs []error
	if err := s.opts.Routing.SetAnycast(name, nil); err != nil {
		errs = append(errs, fmt.Errorf("addresses: %w", err))
	}
	if t.group != nil {
		errs = append(errs, removeGroup(t.group))
	}
	errs = append(errs, os.RemoveAll(filepath.Join(t.dir, "root")))
	if !keepData {
		errs = append(errs, os.RemoveAll(t.dir))
	}
	delete(s.tenants, name)
	delete(s.state.UIDs, name)
	s.state.Added = slices.DeleteFunc(s.state.Added, func(c config.Tenant) bool { return c.Name == name })
	errs = append(errs, s.state.save())
	s.log.Info("tenant removed", "tenant", name, "kept_data", keepData)
	return errors.Join(errs...)
}

// removeGroup removes a cgroup whose last process has just exited; the
// kernel may take a moment to let go of it.
func removeGroup(g group) error {
	var err error
	for range 50 {
		if err = g.Remove(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cgroup: %w", err)
}

// startLocked prepares a tenant (uid, directories, zones, addresses,
// sockets, cgroup, announcements) and starts its process; s.mu is held.
// What was prepared is undone if a step fails.
func (s *Supervisor) startLocked(spec config.Tenant, fromConfig bool, zones map[string][]byte) (err error) {
	spec.SetDefaults()
	c := s.opts.Config
	t := &tenant{s: s, spec: spec, fromConfig: fromConfig, dir: filepath.Join(c.Dir, spec.Name), state: "starting"}
	t.uid = s.state.uid(spec.Name, c.UIDBase)
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			delete(s.state.UIDs, spec.Name)
		}
	}()
	if err := t.prepareDirs(zones); err != nil {
		return fmt.Errorf("tenant %s: %w", spec.Name, err)
	}
	if t.ctl, err = listenControl(t.dir); err != nil {
		return fmt.Errorf("tenant %s: %w", spec.Name, err)
	}
	undo = append(undo, func() { t.ctl.Close() })
	addrs := spec.AddressList()
	if err := s.opts.Routing.SetAnycast(spec.Name, addrs); err != nil {
		return fmt.Errorf("tenant %s: addresses: %w", spec.Name, err)
	}
	undo = append(undo, func() { s.opts.Routing.SetAnycast(spec.Name, nil) })
	if t.socks, err = bindSockets(addrs, c.Port, s.udpSockets(spec)); err != nil {
		return fmt.Errorf("tenant %s: %w", spec.Name, err)
	}
	undo = append(undo, func() { t.socks.Close() })
	if s.cg != nil {
		if t.group, err = s.cg.Create(spec.Name, Limits{CPU: spec.CPU, MemoryMB: spec.MemoryMB, Pids: spec.Pids, Cpuset: spec.Cpuset}); err != nil {
			return fmt.Errorf("tenant %s: %w", spec.Name, err)
		}
		undo = append(undo, func() { t.group.Remove() })
	}
	qname, qtype, _ := spec.CanaryQuestion()
	canary := health.Query{Name: qname, Type: qtype}
	if qname == "" && len(t.zones) > 0 {
		canary = health.Query{Name: t.zones[0], Type: dns.TypeSOA}
	} else if sz := spec.SecondaryOrigins(); qname == "" && len(sz) > 0 {
		// Announced once its first secondary zone is transferred.
		canary = health.Query{Name: sz[0], Type: dns.TypeSOA}
	}
	if t.routes, err = s.opts.Routing.Tenant(spec.Name, routing.TenantChecks{
		Prefixes: spec.PrefixList(), Addresses: addrs, Port: c.Port, NSID: spec.Name, Canary: canary,
	}); err != nil {
		return err
	}
	t.done = make(chan struct{})
	t.quit = make(chan struct{})
	s.tenants[spec.Name] = t
	go t.run()
	return nil
}

// udpSockets is how many UDP sockets each address gets: the configured
// number, else one per core the tenant may use.
func (s *Supervisor) udpSockets(spec config.Tenant) int {
	if n := s.opts.Config.UDPSockets; n > 0 {
		return n
	}
	if spec.Cpuset != "" {
		return max(1, countCPUs(spec.Cpuset))
	}
	return runtime.NumCPU()
}

func countCPUs(list string) int {
	set, _ := parseCPUs(list) // checked with the config
	return set.Count()
}

// Status lists the tenants by name.
func (s *Supervisor) Status() HostStatus {
	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.tenants))
	ts := make([]*tenant, 0, len(names))
	for _, n := range names {
		ts = append(ts, s.tenants[n])
	}
	s.mu.Unlock()
	h := HostStatus{Tenants: []Status{}}
	if s.cg != nil {
		h.Cgroups, h.Controllers = s.cg.Version(), s.cg.Controllers()
	} else if s.cgErr != nil {
		h.Cgroups = "off: " + s.cgErr.Error()
	}
	for _, t := range ts {
		h.Tenants = append(h.Tenants, t.status())
	}
	return h
}

// Tenant is one tenant's status.
func (s *Supervisor) Tenant(name string) (Status, error) {
	s.mu.Lock()
	t, ok := s.tenants[name]
	s.mu.Unlock()
	if !ok {
		return Status{}, fmt.Errorf("tenant %s: %w", name, ErrNotFound)
	}
	return t.status(), nil
}

// HostStatus is the host's view: its cgroup support and every tenant.
type HostStatus struct {
	Cgroups     string   `json:"cgroups"` // "v1", "v2" or why none
	Controllers []string `json:"controllers"`
	Tenants     []Status `json:"tenants"`
}

// Status is one tenant's state.
type Status struct {
	Name        string                `json:"name"`
	State       string                `json:"state"` // starting, running, restarting, stopping
	PID         int                   `json:"pid,omitempty"`
	UID         int                   `json:"uid"`
	Started     time.Time             `json:"started,omitzero"`
	Restarts    int                   `json:"restarts"`
	LastExit    string                `json:"last_exit,omitempty"`
	OOMKills    int                   `json:"oom_kills"`
	FromConfig  bool                  `json:"from_config"`
	Spec        config.Tenant         `json:"spec"`
	Zones       []string              `json:"zones"`
	Prefixes    []health.PrefixStatus `json:"prefixes"`
	Cgroup      []string              `json:"cgroup,omitempty"`
	Protections *Protections          `json:"protections,omitempty"`
}

// tenant is one running tenant.
type tenant struct {
	s          *Supervisor
	spec       config.Tenant
	fromConfig bool
	uid        int
	dir        string
	zones      []string // origins in data/zones
	socks      *sockets
	ctl        *control // its control socket (control.go)
	group      group
	routes     *routing.TenantRoutes
	quit, done chan struct{}

	mu       sync.Mutex
	state    string
	proc     *os.Process
	started  time.Time
	restarts int
	lastExit string
	prot     *Protections
	stopOnce sync.Once
}

// prepareDirs makes DIR/NAME/{root,data/zones}, writes zones given as
// text (or copies the config file's zone files), and hands data to the
// tenant's uid.
func (t *tenant) prepareDirs(zones map[string][]byte) error {
	root, data := filepath.Join(t.dir, "root"), filepath.Join(t.dir, "data")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(data, "zones"), 0o700); err != nil {
		return err
	}
	for _, z := range t.spec.Zones {
		b, err := os.ReadFile(z.File)
		if err != nil {
			return fmt.Errorf("zone %s: %w", z.Origin, err)
		}
		if zones == nil {
			zones = map[string][]byte{}
		}
		zones[dns.CanonicalName(z.Origin)] = b
	}
	for o, b := range zones {
		if err := os.WriteFile(filepath.Join(data, zoneFile(o)), b, 0o600); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(filepath.Join(data, "zones"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if o, ok := strings.CutSuffix(e.Name(), "zone"); ok && strings.HasSuffix(o, ".") {
			t.zones = append(t.zones, o)
		}
	}
	sort.Strings(t.zones)
	if err := os.Chmod(data, 0o700); err != nil {
		return err
	}
	return filepath.WalkDir(data, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, t.uid, t.uid)
	})
}

// sameZones reports whether zones (text by origin) are what the tenant
// already has.
func (t *tenant) sameZones(zones map[string][]byte) bool {
	for o, b := range zones {
		cur, err := os.ReadFile(filepath.Join(t.dir, "data", zoneFile(o)))
		if err != nil || !bytes.Equal(cur, b) {
			return false
		}
	}
	return true
}

// run keeps the tenant's process running until quit: a process that dies
// is withdrawn at once and started again after the restart delay
// (doubling while it keeps dying young, up to a minute).
func (t *tenant) run() {
	defer close(t.done)
	delay := time.Duration(t.s.opts.Config.RestartDelay)
	for {
		started := time.Now()
		err := t.runOnce()
		t.routes.Withdraw()
		select {
		case <-t.quit:
			return
		default:
		}
		wait := delay
		if time.Since(started) < time.Minute {
			delay = min(max(2*delay, 100*time.Millisecond), time.Minute)
		} else {
			delay = time.Duration(t.s.opts.Config.RestartDelay)
			wait = delay
		}
		t.mu.Lock()
		t.state, t.restarts = "restarting", t.restarts+1
		t.mu.Unlock()
		t.s.log.Warn("tenant process ended; withdrawn, restarting", "tenant", t.spec.Name, "exit", err, "in", wait)
		select {
		case <-t.quit:
			return
		case <-time.After(wait):
		}
	}
}

// runOnce starts the tenant's process and waits for it to end.
func (t *tenant) runOnce() error {
	var brokerEnd *os.File
	if t.spec.NetworkNamespace {
		// It connects out through the host (broker.go), for as long
		// as this process lives.
		b, end, err := startBroker(t.spec.Name, t.spec.Dials(), t.s.log)
		if err != nil {
			return err
		}
		defer b.Close()
		defer end.Close()
		brokerEnd = end
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer repR.Close()
	startR, startW, err := os.Pipe()
	if err != nil {
		repW.Close()
		return err
	}
	spec := childSpec{
		Name: t.spec.Name, UID: t.uid, GID: t.uid,
		Root: filepath.Join(t.dir, "root"), Data: filepath.Join(t.dir, "data"),
		Binary: t.s.opts.Binary, NSID: t.spec.Name, Zones: t.zones, Sockets: t.socks.kinds,
		DNS: t.spec.DNS, Secondary: t.spec.Secondary, Control: true, Dnstap: t.spec.Dnstap,
		NetworkNamespace: t.spec.NetworkNamespace, CPUs: t.s.tenantCPUs, Broker: brokerEnd != nil,
	}
	js, _ := json.Marshal(spec)
	cmd := exec.Command(t.s.opts.Binary, InitCommand)
	cmd.Env = []string{EnvSpec + "=" + string(js)}
	if t.spec.MemoryMB > 0 {
		// The Go runtime collects harder near the cgroup's limit
		// rather than being killed at it.
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMEMLIMIT=%dMiB", t.spec.MemoryMB*9/10))
	}
	cmd.ExtraFiles = append([]*os.File{repW, startR}, t.socks.files...)
	cmd.ExtraFiles = append(cmd.ExtraFiles, t.ctl.file) // spec.fdControl(): control.go
	if brokerEnd != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, brokerEnd) // spec.fdBroker(): broker.go
	}
	out := &lineLog{log: t.s.log, tenant: t.spec.Name}
	cmd.Stdout, cmd.Stderr = out, out
	flags := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID)
	if t.spec.NetworkNamespace {
		// Its sockets were bound here and keep this namespace; all it
		// could open itself is in a namespace with nothing in it.
		flags |= syscall.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: flags,
		// The tenant dies with the host rather than serve unsupervised.
		Pdeathsig: syscall.SIGKILL,
	}
	err = t.s.spawn.start(cmd) // not cmd.Start: spawn.go
	repW.Close()
	startR.Close()
	if err != nil {
		startW.Close()
		return err
	}
	if t.group != nil {
		if err := t.group.Add(cmd.Process.Pid); err != nil {
			t.s.log.Error("tenant outside its cgroup", "tenant", t.spec.Name, "err", err)
		}
	}
	startW.Close() // go on
	t.mu.Lock()
	t.state, t.proc, t.started = "running", cmd.Process, time.Now()
	t.mu.Unlock()
	go t.readReport(repR)
	t.routes.Watch()
	err = cmd.Wait()
	t.mu.Lock()
	t.proc = nil
	t.lastExit = exitReason(cmd.ProcessState, err)
	if oom := t.oomKills(); oom > 0 && strings.Contains(t.lastExit, "killed") {
		t.lastExit += fmt.Sprintf(" (memory limit: %d OOM kills so far)", oom)
	}
	t.mu.Unlock()
	return fmt.Errorf("%s", t.lastExit)
}

func (t *tenant) readReport(r *os.File) {
	var p Protections
	if err := json.NewDecoder(r).Decode(&p); err != nil {
		return // the process died before it could tell
	}
	if t.group != nil {
		p.Cgroup = t.s.cg.Version()
		p.Controllers = t.s.cg.Controllers()
	}
	p.Missing = p.missing()
	if len(p.Missing) > 0 {
		t.s.log.Warn("tenant runs without some protections", "tenant", t.spec.Name, "missing", strings.Join(p.Missing, ", "))
	}
	t.mu.Lock()
	t.prot = &p
	t.mu.Unlock()
}

func (t *tenant) oomKills() int {
	if t.group == nil {
		return 0
	}
	return t.group.OOMKills()
}

func exitReason(ps *os.ProcessState, err error) string {
	if ps == nil {
		return err.Error()
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return ps.String()
}

// stop ends the tenant's process: drained first when drain (the prefixes
// get GRACEFUL_SHUTDOWN for the drain wait, then are withdrawn, while the
// process still answers), then SIGTERM, and SIGKILL after 5 s. Its
// sockets are closed.
func (t *tenant) stop(drain bool) {
	t.stopOnce.Do(func() {
		t.mu.Lock()
		t.state = "stopping"
		t.mu.Unlock()
		if drain {
			t.routes.Drain(context.Background())
		}
		close(t.quit)
		// The process may be between starts: look again until run ends.
		kill := time.Now().Add(5 * time.Second)
		for done := false; !done; {
			t.mu.Lock()
			p := t.proc
			t.mu.Unlock()
			if p != nil && time.Now().After(kill) {
				p.Kill()
			} else if p != nil {
				p.Signal(syscall.SIGTERM)
			}
			select {
			case <-t.done:
				done = true
			case <-time.After(100 * time.Millisecond):
			}
		}
		<-t.done
		t.routes.Withdraw()
		t.socks.Close()
		t.ctl.Close()
	})
}

func (t *tenant) status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := Status{
		Name: t.spec.Name, State: t.state, UID: t.uid, Started: t.started, Restarts: t.restarts,
		LastExit: t.lastExit, FromConfig: t.fromConfig, Spec: t.spec.Redacted(), Zones: t.zones,
		Prefixes: t.routes.Status(), Protections: t.prot, OOMKills: t.oomKills(),
	}
	if t.proc != nil {
		st.PID = t.proc.Pid
	}
	if t.group != nil {
		st.Cgroup = t.group.Paths()
	}
	return st
}

// lineLog logs a tenant's output line by line under the host's logger.
type lineLog struct {
	log    *slog.Logger
	tenant string
	mu     sync.Mutex
	buf    []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.log.Info("tenant says", "tenant", l.tenant, "line", string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 4096 {
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

var _ io.Writer = (*lineLog)(nil)
