package rollout

import (
	"context"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
)

// Rollout states.
const (
	Running   = "running"
	Halted    = "halted"    // a gate failed; waiting for keep or revert
	Kept      = "kept"      // halted, the operator kept what was applied; resume continues
	Reverted  = "reverted"  // halted, every node that got it runs its previous config again
	Completed = "completed" // every wave passed; the group's template is the new one
)

// Node states within a rollout.
const (
	NodePending   = "pending"
	NodeApplying  = "applying" // recorded before the PUT: a restarted controller never PUTs twice
	NodeGating    = "gating"
	NodeDone      = "done"
	NodeFailed    = "failed"
	NodeReverted  = "reverted"
	NodeUntouched = "untouched" // never got it (the rollout ended first)
)

// Rollout is one release rolled out to one group, as kept in the store.
type Rollout struct {
	ID           string `json:"id"`
	Kind         string `json:"kind,omitempty"` // KindConfig or KindFirmware
	Group        string `json:"group"`
	Release      string `json:"release"`
	Template     string `json:"template"`
	PrevTemplate string `json:"prev_template,omitempty"`
	// A firmware rollout's bundle (its id in Bundles) and version.
	Bundle   string    `json:"bundle,omitempty"`
	Version  string    `json:"version,omitempty"`
	Canaries []Query   `json:"canaries,omitempty"`
	State    string    `json:"state"`
	Halt     string    `json:"halt,omitempty"` // why it halted
	Waves    []Wave    `json:"waves"`
	Wave     int       `json:"wave"` // the wave in progress
	Nodes    []*Node   `json:"nodes"`
	Events   []Event   `json:"events,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	// MaxOut is the most nodes sharing a prefix and region that were out
	// at once, by "region prefix": what the invariant held to.
	MaxOut map[string]int `json:"max_out,omitempty"`

	// rev is the store version this copy was read or last written at:
	// a save over a newer one fails (another controller wrote it).
	rev int64
	// stop, set while the runner drives this copy, ends the drive when
	// a save fails: the store no longer takes this controller's steps.
	stop context.CancelCauseFunc

	// Catchment are the catchment measurements taken around each wave
	// (serve -catchment-targets).
	Catchment []CatchmentRef `json:"catchment,omitempty"`
}

// CatchmentRef is a catchment measurement taken before or after a wave.
type CatchmentRef struct {
	Wave  int    `json:"wave"`
	Phase string `json:"phase"` // before, after
	ID    string `json:"id,omitempty"`
	Error string `json:"error,omitempty"`
}

// Wave is a set of nodes updated together (within the invariant).
type Wave struct {
	Name  string   `json:"name"`
	Nodes []string `json:"nodes"`
}

// Node is one node's progress.
type Node struct {
	Name   string `json:"name"`
	Wave   int    `json:"wave"`
	State  string `json:"state"`
	Target string `json:"target"` // hash of the document applied; a firmware rollout's version
	Doc    string `json:"doc"`    // the document applied; for firmware, the config it ran when it started
	// A firmware rollout records the node's committed slot and version
	// before the update.
	PrevSlot    string `json:"prev_slot,omitempty"`
	PrevVersion string `json:"prev_version,omitempty"`
	// Baseline is the node\'s traffic (answered qps, SERVFAILs) just
	// before its change, for the servfail and qps gates.
	Baseline *live.Rate `json:"baseline,omitempty"`
	PrevHash string     `json:"prev_hash,omitempty"`
	PrevDoc  string     `json:"prev_doc,omitempty"`
	Put      bool       `json:"put"` // the PUT (or bundle upload) was accepted
	Started  time.Time  `json:"started,omitzero"`
	Finished time.Time  `json:"finished,omitzero"`
	Gates    []Result   `json:"gates,omitempty"`
	Waiting  string     `json:"waiting,omitempty"` // why it has not started (the invariant)
	Error    string     `json:"error,omitempty"`
}

// Event is a line of the rollout's log.
type Event struct {
	At   time.Time `json:"at"`
	Node string    `json:"node,omitempty"`
	Msg  string    `json:"msg"`
}

// maxEvents bounds the log kept with a rollout.
const maxEvents = 200

func (r *Rollout) node(name string) *Node {
	for _, n := range r.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (r *Rollout) event(node, msg string) {
	r.Events = append(r.Events, Event{At: time.Now().UTC(), Node: node, Msg: msg})
	if len(r.Events) > maxEvents {
		r.Events = r.Events[len(r.Events)-maxEvents:]
	}
}

// Finished reports whether the rollout will do nothing more.
func (r *Rollout) Finished() bool { return r.State == Completed || r.State == Reverted }

// Quarantine is a release that failed, never rolled again until cleared.
type Quarantine struct {
	Release string    `json:"release"`
	Group   string    `json:"group"`
	Rollout string    `json:"rollout"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}
