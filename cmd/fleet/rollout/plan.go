// Package rollout rolls a new config template, or a firmware bundle, out
// to a group's nodes in gated waves: a canary per region first, then the
// waves (by the nodes' wave labels, or spread by a hash of the release),
// each node applied whole through its API (a config) or updated through
// its OTA transaction (a bundle) and then gated on DNS and BGP signals (pass,
// fail, inconclusive; no data is never a pass). It never takes the last
// nodes announcing a prefix in a region out at once, whatever the waves
// say. A failure halts the rollout and quarantines the release; the
// operator then reverts or keeps, and resumes explicitly. The rollout's
// state is written to the store at every step, so a controller killed
// mid-wave resumes without applying to any node twice.
package rollout

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
)

// spread is a node's place in a release's order: deterministic for the
// release, different from one release to the next.
func spread(release, node string) uint64 {
	h := sha256.Sum256([]byte(release + "/" + node))
	return binary.BigEndian.Uint64(h[:8])
}

// Plan assigns nodes to waves for a release: wave 0 holds one canary per
// region (the region's first node in the release's order), then one wave
// per wave label in label order (unlabelled nodes spread over them), or,
// with no labels, waves spread waves ways by the release's order.
func Plan(release string, nodes []inventory.Node, waves int) [][]string {
	if waves < 1 {
		waves = 1
	}
	ordered := append([]inventory.Node(nil), nodes...)
	sort.Slice(ordered, func(i, j int) bool {
		return spread(release, ordered[i].Name) < spread(release, ordered[j].Name)
	})
	var canary []string
	taken := map[string]bool{}
	regions := map[string]bool{}
	for _, n := range ordered {
		if !regions[n.Region] {
			regions[n.Region] = true
			canary = append(canary, n.Name)
			taken[n.Name] = true
		}
	}
	sort.Strings(canary)
	var labels []string
	seen := map[string]bool{}
	for _, n := range ordered {
		if n.Wave != "" && !seen[n.Wave] {
			seen[n.Wave] = true
			labels = append(labels, n.Wave)
		}
	}
	sort.Strings(labels)
	var rest [][]string
	if len(labels) > 0 {
		rest = make([][]string, len(labels))
		idx := map[string]int{}
		for i, l := range labels {
			idx[l] = i
		}
		i := 0
		for _, n := range ordered {
			if taken[n.Name] {
				continue
			}
			if n.Wave != "" {
				rest[idx[n.Wave]] = append(rest[idx[n.Wave]], n.Name)
			} else {
				rest[i%len(labels)] = append(rest[i%len(labels)], n.Name)
				i++
			}
		}
	} else {
		rest = make([][]string, waves)
		i := 0
		for _, n := range ordered {
			if taken[n.Name] {
				continue
			}
			rest[i%waves] = append(rest[i%waves], n.Name)
			i++
		}
	}
	out := [][]string{canary}
	for _, w := range rest {
		if len(w) > 0 {
			sort.Strings(w)
			out = append(out, w)
		}
	}
	return out
}
