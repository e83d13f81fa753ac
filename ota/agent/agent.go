// Package agent is the on-box OTA agent. Its one job: install a signed
// bundle into the INACTIVE slot — verified before and while it streams,
// never held in memory, the slot's previous files untouched unless the
// whole bundle was good — then record the new version in the slot state
// and arm one trial boot of it.
//
// It also runs the rest of the update transaction (trial.go): after a
// good install it asks the box to drain and reboot once into the new
// slot (Layout.Reboot), having recorded the zone serials served before;
// on the trial boot it soaks the new firmware and commits it, or marks
// it bad and reboots into the old slot. A version that failed its trial
// (here, or by the boot loader falling back) is remembered on the data
// partition and refused if it is offered again.
//
// A bundle comes as a stream (an upload: Install) or from a URL
// (Download), whose interrupted transfer resumes with an HTTP range from
// the last verified chunk written. The last update's outcome and reason
// is kept in a small JSON file on the data partition (Config.StateFile).
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/bundle"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// Layout is where a box's slots are and how it boots: what PID 1 (or
// `shoestring run` with binary slots) knows.
type Layout struct {
	// Method is the boot method (a board's, or slot.Binary).
	Method board.BootMethod
	// Slots is the slot state (slot.New).
	Slots slot.Slots
	// SlotDir returns the directory holding slot s's files — for GRUB,
	// tryboot and the harness the slot's partition, mounted; for binary
	// slots the directory holding both binaries — and a function that
	// releases it (nil when there is nothing to release).
	SlotDir func(s string) (dir string, release func() error, err error)
	// Booted is the slot running now ("": unknown, the committed one).
	Booted string
	// Board is the board bundles must be for.
	Board string
	// Cmdline returns the kernel command line of slot s, written to
	// the slot's cmdline.txt (it names its slot, so no bundle carries
	// it); nil writes none. Not used for binary slots.
	Cmdline func(s string) string
	// Reboot asks the box to drain and reboot (PID 1: a planned stop;
	// binary slots: the service exits and systemd starts it again), and
	// returns at once. Nil: an install leaves the box armed, and a
	// failed soak waits for the next reboot to fall back.
	Reboot func(reason string)
}

// runningVersion is the version a bundle must be newer than: the one the
// booted slot was installed as, from its signed manifest, when an update
// put it there; otherwise the firmware's own (an image's first slot, a
// development build). The downgrade rule guards against an old signed
// bundle being offered again, so it compares signed versions with signed
// versions: a binary built as "dev", or an image's stamp, must not let an
// older release back in.
func runningVersion(st slot.State, booted, firmware string) string {
	if v := st.Slots[booted].Version; v != "" {
		return v
	}
	return firmware
}

// Config configures an agent.
type Config struct {
	Layout
	// Keys are the trusted public keys (LoadKeys); nil refuses every
	// bundle, with KeysError as the reason when set.
	Keys      *bundle.Keys
	KeysError error
	// Running is the running firmware's version: a bundle must be newer
	// unless AllowDowngrade. The version the booted slot was installed
	// as, when an update installed it, takes its place.
	Running        string
	AllowDowngrade bool
	// StateFile keeps the last update's outcome (on the data partition);
	// "" keeps it in memory only.
	StateFile string
	// HTTP fetches bundles for Download (default: a client without an
	// overall timeout, as a bundle may take minutes).
	HTTP *http.Client
	// Resumes bounds how often one download resumes after its transfer
	// broke (default 5).
	Resumes int
	// Soak is how long a new firmware on trial must stay healthy before
	// it is committed (ota.soak; default 60 s).
	Soak time.Duration
	// Serials returns the zones served now and their serials: recorded
	// before an update reboots, and required again (or newer) at the end
	// of the trial's soak. Nil: no zone is checked.
	Serials func() map[string]uint32
	// OnCommit runs once a trial is committed: what the old firmware
	// would have needed to roll back to (the store's pre-migration
	// snapshot) can go.
	OnCommit func()
	Log      *slog.Logger
}

// Request says what one update may do besides the config.
type Request struct {
	// Source is what the log and the outcome call the bundle ("upload",
	// a URL).
	Source string
	// AllowDowngrade accepts a version not newer than the running one
	// (also when the config does not).
	AllowDowngrade bool
	// NoReboot leaves the box armed after the install: the trial starts
	// at the next reboot, whenever the operator makes it.
	NoReboot bool
}

// States of Progress.
const (
	Idle      = "idle"      // nothing since the node started
	Receiving = "receiving" // verifying and writing the inactive slot
	Armed     = "armed"     // installed and armed: the next reboot tries it once
	Rebooting = "rebooting" // installed and armed; draining and rebooting into it
	Failed    = "failed"    // the last update was refused or failed; the slot is as it was
)

// Progress is what an update is doing now, or did last.
type Progress struct {
	State   string `json:"state"`
	Source  string `json:"source,omitempty"`
	Slot    string `json:"slot,omitempty"`
	Version string `json:"version,omitempty"`
	// Part is the part being written.
	Part string `json:"part,omitempty"`
	// Bytes is how far into the bundle the install is; Total the
	// bundle's size once its manifest is verified.
	Bytes   int64     `json:"bytes"`
	Total   int64     `json:"total,omitempty"`
	Resumes int       `json:"resumes,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
	Error   string    `json:"error,omitempty"`
	// RestartArg is, once Armed, the reboot(2) argument the reboot into
	// the new slot needs (the Pi's "0 tryboot"), "" for a plain restart.
	RestartArg string `json:"restart_arg,omitempty"`
}

// Results of an Outcome.
const (
	ResultInstalled  = "installed"   // written and armed
	ResultRefused    = "refused"     // a bad bundle: key, corruption, truncation, board, version, a version that failed before
	ResultFailed     = "failed"      // could not be done (I/O, network, slot state)
	ResultTrying     = "trying"      // booted on trial, soaking
	ResultCommitted  = "committed"   // passed its soak: the new committed version
	ResultRolledBack = "rolled_back" // failed its trial (soak, panic, hang, crash): marked bad, the old slot serves
)

// Outcome is how an update ended, kept in the state file.
type Outcome struct {
	Result  string    `json:"result"`
	Version string    `json:"version,omitempty"`
	Slot    string    `json:"slot,omitempty"`
	Source  string    `json:"source,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Bytes   int64     `json:"bytes"`
	At      time.Time `json:"at"`
	// Started is when the install began; the time to commit is
	// measured from it.
	Started time.Time `json:"started,omitzero"`
	// Serials are the zones served, and their serials, when the update
	// rebooted: the trial must serve each at least at that serial.
	Serials map[string]uint32 `json:"serials_before,omitempty"`
}

// BadVersion is a version that failed its trial, kept so that it is
// never tried again, and why.
type BadVersion struct {
	Version string    `json:"version"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// ErrBadVersion refuses a bundle whose version failed its trial before.
var ErrBadVersion = errors.New("version failed its trial before")

// ErrBusy is returned while another update runs.
var ErrBusy = errors.New("an update is already running")

// RefusedError is a bundle refused as bad; the inactive slot is as it was.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return "bundle refused: " + e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// Agent installs bundles. Its methods are safe for concurrent use; one
// update runs at a time.
type Agent struct {
	c    Config
	log  *slog.Logger
	busy sync.Mutex

	mu   sync.Mutex
	prog Progress
	last *Outcome
	bad  []BadVersion
}

// New returns an agent, reading the last outcome back from the state
// file.
func New(c Config) (*Agent, error) {
	if c.Slots == nil || c.SlotDir == nil {
		return nil, errors.New("ota agent: no slots")
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{}
	}
	if c.Resumes == 0 {
		c.Resumes = 5
	}
	a := &Agent{c: c, log: c.Log, prog: Progress{State: Idle}}
	if c.StateFile != "" {
		var f stateFile
		b, err := os.ReadFile(c.StateFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			if err := json.Unmarshal(b, &f); err != nil {
				return nil, fmt.Errorf("ota state %s: %w", c.StateFile, err)
			}
			a.last, a.bad = f.Last, f.Bad
		}
	}
	if err := a.reconcile(); err != nil {
		a.log.Error("ota: slot state not read; bad versions not updated", "err", err)
	}
	return a, nil
}

// LoadKeys reads ota.keys: each entry a public key ("NAME+HASH+BASE64")
// or the absolute path of a file of keys.
func LoadKeys(entries []string) (*bundle.Keys, error) {
	var inline, files []string
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if strings.HasPrefix(e, "/") {
			files = append(files, e)
		} else {
			inline = append(inline, e)
		}
	}
	if len(inline)+len(files) == 0 {
		return nil, errors.New("no trusted keys: set ota.keys in the node config")
	}
	all := inline
	if len(files) > 0 {
		k, err := bundle.LoadKeys(files...)
		if err != nil {
			return nil, err
		}
		all = append(all, k.List()...)
	}
	return bundle.ParseKeys(all...)
}

// stateFile is the agent's file on the data partition.
type stateFile struct {
	Format int          `json:"format"`
	Last   *Outcome     `json:"last,omitempty"`
	Bad    []BadVersion `json:"bad,omitempty"`
}

// Progress returns what the current or last update is doing.
func (a *Agent) Progress() Progress {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.prog
}

// Last returns the last update's outcome (false: none recorded).
func (a *Agent) Last() (Outcome, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		return Outcome{}, false
	}
	return *a.last, true
}

// Slots returns the slot state, and the slot running now.
func (a *Agent) Slots() (slot.State, string, error) {
	st, err := a.c.Slots.State()
	booted := a.c.Booted
	if booted == "" {
		booted = st.Committed
	}
	return st, booted, err
}

func (a *Agent) update(f func(p *Progress)) {
	a.mu.Lock()
	f(&a.prog)
	a.prog.Updated = time.Now()
	a.mu.Unlock()
}

// Install reads a bundle from r (an upload) and installs it into the
// inactive slot.
func (a *Agent) Install(ctx context.Context, r io.Reader, req Request) (Outcome, error) {
	if req.Source == "" {
		req.Source = "upload"
	}
	return a.run(ctx, req, func(j *job) error { return j.stream(ctx, r) })
}

// Download fetches a bundle from url and installs it, resuming with
// HTTP ranges when the transfer breaks.
func (a *Agent) Download(ctx context.Context, url string, req Request) (Outcome, error) {
	if req.Source == "" {
		req.Source = url
	}
	return a.run(ctx, req, func(j *job) error { return j.download(ctx, url) })
}

// Bad returns the versions that failed their trial.
func (a *Agent) Bad() []BadVersion {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]BadVersion(nil), a.bad...)
}

// job is one update.
type job struct {
	a    *Agent
	req  Request
	slot string
	t    target
	m    *bundle.Manifest
	opts bundle.Options
}

func (a *Agent) run(ctx context.Context, req Request, body func(*job) error) (Outcome, error) {
	if !a.busy.TryLock() {
		return Outcome{}, ErrBusy
	}
	defer a.busy.Unlock()
	start := time.Now()
	a.update(func(p *Progress) { *p = Progress{State: Receiving, Source: req.Source, Started: start} })
	a.log.Info("ota: update started", "source", req.Source)
	j := &job{a: a, req: req}
	err := j.install(ctx, body)
	o := Outcome{Result: ResultInstalled, Source: req.Source, Slot: j.slot, At: time.Now().UTC(), Started: start.UTC()}
	if j.m != nil {
		o.Version = j.m.Version
	}
	a.mu.Lock()
	o.Bytes = a.prog.Bytes
	a.mu.Unlock()
	if err != nil {
		o.Result, o.Reason = ResultFailed, err.Error()
		if bad(err) {
			o.Result = ResultRefused
			err = &RefusedError{Err: err}
		}
		a.log.Error("ota: update "+o.Result+"; the inactive slot is as it was", "source", req.Source, "slot", j.slot, "version", o.Version, "reason", o.Reason)
	} else {
		o.Reason = fmt.Sprintf("version %s written to slot %s and armed: the next reboot tries it once", o.Version, j.slot)
		if a.c.Serials != nil {
			o.Serials = a.c.Serials()
		}
		a.log.Info("ota: update installed", "source", req.Source, "slot", j.slot, "version", o.Version, "took", time.Since(start).Round(time.Millisecond))
	}
	restart := ""
	if err == nil {
		if st, e := a.c.Slots.State(); e == nil {
			restart = slot.RestartArg(st)
		}
	}
	a.update(func(p *Progress) {
		p.State, p.Error, p.Slot, p.Version, p.RestartArg, p.Part = Armed, "", o.Slot, o.Version, restart, ""
		if err != nil {
			p.State, p.Error = Failed, err.Error()
		}
	})
	a.record(o)
	if err == nil && !req.NoReboot && a.c.Reboot != nil {
		a.update(func(p *Progress) { p.State = Rebooting })
		a.log.Info("ota: draining and rebooting into the new slot once", "slot", o.Slot, "version", o.Version)
		a.c.Reboot(fmt.Sprintf("update to %s: trial boot of slot %s", o.Version, o.Slot))
	}
	return o, err
}

// record makes o the last outcome and saves it.
func (a *Agent) record(o Outcome) {
	a.mu.Lock()
	a.last = &o
	a.mu.Unlock()
	if e := a.save(); e != nil {
		a.log.Error("ota: outcome not saved", "file", a.c.StateFile, "err", e)
	}
}

// bad says whether err is a bad bundle rather than a failure to install
// a good one.
func bad(err error) bool {
	for _, e := range []error{ErrBadVersion, bundle.ErrFormat, bundle.ErrSignature, bundle.ErrManifest, bundle.ErrBoard, bundle.ErrVersion, bundle.ErrCorrupt, bundle.ErrTruncated, bundle.ErrTrailing, errNoKeys} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

var errNoKeys = errors.New("no trusted keys")

// save writes the last outcome and the bad versions.
func (a *Agent) save() error {
	if a.c.StateFile == "" {
		return nil
	}
	a.mu.Lock()
	f := stateFile{Format: 1, Last: a.last, Bad: a.bad}
	b, err := json.MarshalIndent(f, "", "  ")
	a.mu.Unlock()
	if err != nil {
		return err
	}
	return slot.WriteAtomic(a.c.StateFile, append(b, '\n'), 0o644)
}

// install picks the inactive slot, streams the bundle into temporary
// files there (body), and only when every part is verified and written
// replaces the slot's files and arms it.
func (j *job) install(ctx context.Context, body func(*job) error) error {
	a := j.a
	if a.c.Keys == nil {
		if a.c.KeysError != nil {
			return fmt.Errorf("%w: %v", errNoKeys, a.c.KeysError)
		}
		return fmt.Errorf("%w: set ota.keys in the node config", errNoKeys)
	}
	st, booted, err := a.Slots()
	if err != nil {
		return fmt.Errorf("slot state: %w", err)
	}
	j.slot = slot.Other(booted)
	if j.slot == st.Committed {
		return fmt.Errorf("running slot %s on trial: it must be committed (or fall back) before another update", booted)
	}
	a.update(func(p *Progress) { p.Slot = j.slot })
	dir, release, err := a.c.SlotDir(j.slot)
	if err != nil {
		return fmt.Errorf("slot %s: %w", j.slot, err)
	}
	if release != nil {
		defer func() {
			if err := release(); err != nil {
				a.log.Warn("ota: releasing slot", "slot", j.slot, "err", err)
			}
		}()
	}
	j.opts = bundle.Options{Board: a.c.Board, Running: runningVersion(st, booted, a.c.Running), AllowDowngrade: a.c.AllowDowngrade || j.req.AllowDowngrade}
	j.t = newTarget(a.c.Method, dir, j.slot)
	defer j.t.cleanup()
	if err := body(j); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Every part is verified and on disk beside the old files. The slot
	// is recorded empty while its files are swapped, so a cut in the
	// middle leaves no stale version to try.
	if err := a.c.Slots.Install(j.slot, ""); err != nil {
		return fmt.Errorf("slot state: %w", err)
	}
	cmdline := ""
	if a.c.Cmdline != nil {
		cmdline = a.c.Cmdline(j.slot)
	}
	if err := j.t.finish(cmdline); err != nil {
		return fmt.Errorf("slot %s: %w", j.slot, err)
	}
	if err := a.c.Slots.Install(j.slot, j.m.Version); err != nil {
		return fmt.Errorf("slot state: %w", err)
	}
	if err := a.c.Slots.TryOnce(j.slot); err != nil {
		return fmt.Errorf("arming slot %s: %w", j.slot, err)
	}
	return nil
}

// opened is called once the manifest is verified, before anything is
// written: a version that failed its trial before is refused here.
func (j *job) opened(m *bundle.Manifest) error {
	j.m = m
	for _, b := range j.a.Bad() {
		if b.Version == m.Version {
			return fmt.Errorf("%w: %s (%s); build and sign a new version", ErrBadVersion, m.Version, b.Reason)
		}
	}
	j.t.setManifest(m)
	j.a.update(func(p *Progress) { p.Version, p.Total = m.Version, m.Size() })
	j.a.log.Info("ota: bundle verified", "version", m.Version, "board", m.Board, "signed_by", strings.Join(m.SignedBy, ","), "bytes", m.Size(), "slot", j.slot)
	return nil
}

// stream installs a bundle read from r.
func (j *job) stream(ctx context.Context, r io.Reader) error {
	cr := &counter{r: r, j: j, ctx: ctx}
	rd, err := bundle.Open(cr, j.a.c.Keys, j.opts)
	if err != nil {
		return err
	}
	if err := j.opened(rd.Manifest()); err != nil {
		return err
	}
	return rd.Install(j.t)
}

// counter counts a bundle's bytes into Progress and stops at ctx's end.
type counter struct {
	r   io.Reader
	j   *job
	ctx context.Context
	// base is where in the bundle r starts (a resumed download).
	base, n int64
}

func (c *counter) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	part := ""
	if c.j.t != nil {
		part = c.j.t.current()
	}
	c.j.a.update(func(pr *Progress) { pr.Bytes, pr.Part = c.base+c.n, part })
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
