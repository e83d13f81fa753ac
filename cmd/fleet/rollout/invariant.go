package rollout

import (
	"fmt"
	"math"
	"sort"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
)

// Keep is how many of n nodes announcing a prefix in a region must stay
// announcing: at least min, or frac of them, whichever is more.
func Keep(n, min int, frac float64) int {
	k := int(math.Ceil(float64(n) * frac))
	if k < min {
		k = min
	}
	return k
}

// MayTakeOut reports whether node may go into an update while the nodes
// in out are (in an update, or reported not announcing): for each prefix
// it announces, the nodes of its region announcing that prefix left
// announcing must stay at least Keep. A prefix announced by no more nodes
// than Keep is updated one node at a time (never none: the rollout could
// not finish). When it may not, why names the prefix and region.
func MayTakeOut(node inventory.Node, all []inventory.Node, out map[string]bool, states map[string]live.State, min int, frac float64) (ok bool, why string) {
	for _, p := range node.Prefixes {
		var group []string
		for _, n := range all {
			if n.Region == node.Region && contains(n.Prefixes, p) {
				group = append(group, n.Name)
			}
		}
		allowed := len(group) - Keep(len(group), min, frac)
		if allowed < 1 {
			allowed = 1
		}
		var gone []string
		for _, name := range group {
			if name == node.Name {
				continue
			}
			if out[name] {
				gone = append(gone, name)
				continue
			}
			if st, ok := states[name]; ok {
				if ann, known := st.Announcing(p); known && !ann {
					gone = append(gone, name+" (withdrawn)")
				}
			}
		}
		if len(gone)+1 > allowed {
			sort.Strings(gone)
			return false, fmt.Sprintf("prefix %s in region %q: %d of %d nodes announce it, at most %d may be out at once; out now: %v", p, node.Region, len(group)-len(gone), len(group), allowed, gone)
		}
	}
	return true, ""
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
