package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/ota/bundle"
)

// Rollout kinds.
const (
	KindConfig   = "" // a group template (the default)
	KindFirmware = "firmware"
)

// Bundles keeps uploaded firmware bundles in a directory, one file per
// bundle named by its SHA-256, so a rollout that resumes after a
// controller restart uploads the same bytes.
type Bundles struct{ Dir string }

// BundleInfo is what the controller knows of a stored bundle. The
// signature is the node's to check (it holds the trusted keys).
type BundleInfo struct {
	ID      string `json:"id"` // SHA-256 of the file, hex
	Board   string `json:"board"`
	Version string `json:"version"`
	Size    int64  `json:"size"`
}

var bundleID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Put stores the bundle read from r and returns what its manifest says.
// A file that is not a bundle is refused and nothing is kept.
func (b Bundles) Put(r io.Reader) (BundleInfo, error) {
	if b.Dir == "" {
		return BundleInfo{}, errors.New("no bundle directory configured")
	}
	if err := os.MkdirAll(b.Dir, 0o700); err != nil {
		return BundleInfo{}, err
	}
	tmp, err := os.CreateTemp(b.Dir, "upload-*")
	if err != nil {
		return BundleInfo{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return BundleInfo{}, fmt.Errorf("bundle upload: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return BundleInfo{}, err
	}
	m, err := bundle.Inspect(tmp)
	if err != nil {
		return BundleInfo{}, fmt.Errorf("not a bundle: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return BundleInfo{}, err
	}
	info := BundleInfo{ID: hex.EncodeToString(h.Sum(nil)), Board: m.Board, Version: m.Version, Size: n}
	if err := os.Rename(tmp.Name(), b.path(info.ID)); err != nil {
		return BundleInfo{}, err
	}
	return info, nil
}

func (b Bundles) path(id string) string { return filepath.Join(b.Dir, id+".bundle") }

// Get reads a stored bundle's manifest.
func (b Bundles) Get(id string) (BundleInfo, error) {
	f, err := b.Open(id)
	if err != nil {
		return BundleInfo{}, err
	}
	defer f.Close()
	m, err := bundle.Inspect(f)
	if err != nil {
		return BundleInfo{}, fmt.Errorf("bundle %s: %w", id, err)
	}
	st, _ := f.Stat()
	return BundleInfo{ID: id, Board: m.Board, Version: m.Version, Size: st.Size()}, nil
}

// Open opens a stored bundle.
func (b Bundles) Open(id string) (*os.File, error) {
	if !bundleID.MatchString(id) {
		return nil, fmt.Errorf("bundle %q: not a bundle id (sha256, hex)", id)
	}
	f, err := os.Open(b.path(id))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: not uploaded", id)
	}
	return f, nil
}

// committedVersion is the version in the node's committed slot, and
// whether the node runs it (booted from it).
func committedVersion(s *api.SlotsStatus) (version string, running bool) {
	if s == nil {
		return "", false
	}
	for _, sl := range s.Slots {
		if sl.Name == s.Committed {
			return sl.Version, s.Booted == s.Committed
		}
	}
	return "", false
}

// trialFailed reports whether the node's last update outcome is the
// target version failing (its trial rolled back, or the install failed
// or was refused) since the node's step started.
func trialFailed(s *api.SlotsStatus, version string, since time.Time) (bool, string) {
	if s == nil || s.Last == nil || s.Last.Version != version || s.Last.At.Before(since) {
		return false, ""
	}
	switch s.Last.Result {
	case "rolled_back", "failed", "refused":
		return true, fmt.Sprintf("update to %s %s: %s (committed slot %s, booted %s)", version, s.Last.Result, s.Last.Reason, s.Committed, s.Booted)
	}
	return false, ""
}

// gateFirmware: the node committed the update (OTA): its committed slot
// holds the release's version and it booted from it. A trial that rolled
// back fails; anything else (installing, rebooting, soaking) is
// inconclusive.
func gateFirmware(in gateInput) Result {
	r := Result{Gate: "firmware"}
	s := in.state.Slots
	if !in.state.Reached || s == nil {
		r.Outcome, r.Detail = Inconclusive, "no slot state"
		return r
	}
	if v, running := committedVersion(s); v == in.target && running {
		r.Outcome, r.Detail = Pass, fmt.Sprintf("committed %s in slot %s", v, s.Committed)
		return r
	}
	if bad, why := trialFailed(s, in.target, time.Time{}); bad {
		r.Outcome, r.Detail = Fail, why
		return r
	}
	r.Outcome, r.Detail = Inconclusive, fmt.Sprintf("not committed yet (booted %s, committed %s, trial %q)", s.Booted, s.Committed, s.Trial)
	return r
}

// updateFirmware installs the rollout's bundle on a node through its
// update API and gates it. The upload happens at most once per rollout
// (n.Put, saved): the node's update transaction (install into the
// inactive slot, reboot, soak, commit or fall back) is the node's own;
// the controller reads its outcome from the slot state.
func (r *Runner) updateFirmware(ctx context.Context, ro *Rollout, n *Node, cl *api.Client) (bool, string) {
	r.mu.Lock()
	state := n.State
	r.mu.Unlock()
	if state == NodePending {
		// What it runs now, for the gates (its config) and the record
		// (its committed slot).
		var sl api.SlotsStatus
		var cs api.ConfigStatus
		for {
			var err error
			if sl, err = cl.Slots(); err == nil {
				if cs, err = cl.Config(); err == nil {
					break
				}
			}
			if !sleep(ctx, r.Policy.Interval) {
				return false, ctx.Err().Error()
			}
		}
		v, _ := committedVersion(&sl)
		base := r.baseline(ctx, n.Name)
		r.set(ro, func() {
			n.Baseline = base
			n.PrevSlot, n.PrevVersion, n.Doc = sl.Committed, v, cs.Document
			n.State, n.Started = NodeApplying, time.Now().UTC()
			ro.event(n.Name, fmt.Sprintf("installing %s (committed now: %s in slot %s)", ro.Version, v, sl.Committed))
		})
		state = NodeApplying
	}
	if state == NodeApplying {
		if ok, why := r.install(ctx, ro, n, cl); !ok {
			if ctx.Err() == nil {
				r.set(ro, func() { n.State, n.Error, n.Finished = NodeFailed, why, time.Now().UTC() })
			}
			return false, why
		}
		r.set(ro, func() { n.State = NodeGating; ro.event(n.Name, "committed "+ro.Version+"; gating") })
	}
	return true, ""
}

// install uploads the bundle (once) and waits for the node to commit it
// or fall back.
func (r *Runner) install(ctx context.Context, ro *Rollout, n *Node, cl *api.Client) (bool, string) {
	deadline := time.Now().Add(r.Policy.FirmwareTimeout)
	for {
		if time.Now().After(deadline) {
			return false, fmt.Sprintf("node did not commit %s within %s", ro.Version, r.Policy.FirmwareTimeout)
		}
		sl, err := cl.Slots()
		if err == nil {
			if v, running := committedVersion(&sl); v == ro.Version && running {
				return true, ""
			}
			if bad, why := trialFailed(&sl, ro.Version, n.Started); bad {
				return false, why
			}
			// The node shows this version's update under way (an upload
			// whose answer was lost to the reboot): never send it twice.
			underway := sl.Last != nil && sl.Last.Version == ro.Version && !sl.Last.At.Before(n.Started)
			if !underway && !r.putDone(&n.Put) {
				ok, why := r.upload(ctx, ro, n, cl)
				if !ok {
					return false, why
				}
			}
		}
		// Installing, rebooting (unreachable) or soaking: wait.
		if !sleep(ctx, r.Policy.Interval) {
			return false, ctx.Err().Error()
		}
	}
}

// upload sends the bundle; false with why when the node refuses it.
func (r *Runner) upload(ctx context.Context, ro *Rollout, n *Node, cl *api.Client) (bool, string) {
	// As before a config PUT: a controller that may no longer lead
	// sends nothing.
	if r.MayAct != nil {
		if err := r.MayAct(ctx); err != nil {
			r.Log.Warn("rollout: not sending the bundle: this controller may not act", "node", n.Name, "err", err)
			if ro.stop != nil {
				ro.stop(err)
			}
			return false, err.Error()
		}
	}
	f, err := r.Bundles.Open(ro.Bundle)
	if err != nil {
		return false, err.Error()
	}
	defer f.Close()
	_, err = cl.Update(f, false)
	var ae *api.APIError
	switch {
	case err == nil:
		r.set(ro, func() { n.Put = true; ro.event(n.Name, "bundle accepted; the node installs and reboots into it") })
	case errors.As(err, &ae) && ae.Code == 409:
		// Busy with another update: wait.
	case errors.As(err, &ae) && ae.Code/100 == 4:
		return false, "the node refused the bundle: " + err.Error()
	}
	return true, ""
}

// StartFirmware plans a rollout of a stored bundle to group's nodes.
func (r *Runner) StartFirmware(group, bundleID string, canaries []Query) (*Rollout, error) {
	r.init()
	info, err := r.Bundles.Get(bundleID)
	if err != nil {
		return nil, err
	}
	release := fmt.Sprintf("%s-%s", info.Version, info.ID[:12])
	ro := &Rollout{Kind: KindFirmware, Group: group, Release: release, Bundle: info.ID, Version: info.Version, Canaries: canaries}
	return r.start(ro, func(inventory.Node) (string, string, error) { return info.Version, "", nil })
}

// revertFirmware: the controller keeps no older bundle to put back, so a
// firmware revert checks that each node that got the release is on its
// previous version again (a failed trial falls back by itself) and says
// which are not.
func (r *Runner) revertFirmware(ro *Rollout, n *Node) {
	in, err := r.inv().Get(n.Name)
	if err != nil {
		r.set(ro, func() { n.Error = "revert: " + err.Error() })
		return
	}
	sl, err := r.Client(in.API).Slots()
	r.set(ro, func() {
		v, running := committedVersion(&sl)
		switch {
		case err != nil:
			n.Error = "revert: " + err.Error()
		case v == n.PrevVersion && running:
			n.State = NodeReverted
			ro.event(n.Name, fmt.Sprintf("on its previous firmware %s (slot %s)", v, sl.Committed))
		default:
			n.Error = fmt.Sprintf("revert: runs %s, not %s; roll out a bundle of %s", v, n.PrevVersion, n.PrevVersion)
			ro.event(n.Name, n.Error)
		}
	})
}
