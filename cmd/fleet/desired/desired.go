// Package desired renders what each node's config should be: a template
// per group (Go text/template over a node config document) filled with
// the node's inventory entry and values, validated as strictly as the
// node itself validates it (firmware/config), and identified by its hash,
// which is what the node reports back, so drift is a comparison of two
// hashes.
package desired

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"text/template"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/reconfig"
)

// Bucket is the store bucket of the groups.
const Bucket = "groups"

// Group is a config template shared by a group of nodes.
type Group struct {
	Name     string `json:"name"`
	Template string `json:"template"`
	// Release is the template's identity (a hash prefix): what a rollout
	// rolls and what is quarantined.
	Release string    `json:"release"`
	Updated time.Time `json:"updated"`
}

// ReleaseOf is the identity of a template.
func ReleaseOf(tmpl string) string {
	h := sha256.Sum256([]byte(tmpl))
	return hex.EncodeToString(h[:6])
}

// Data is what a template sees: {{.Node.Name}}, {{.Node.Site}},
// {{.Vars.dns_listen}}, ...
type Data struct {
	Node inventory.Node
	Vars map[string]string
}

// Render fills tmpl for n and validates the result as a node config. A
// missing value is an error naming it.
func Render(tmpl string, n inventory.Node) ([]byte, error) {
	t, err := template.New("group").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	var buf bytes.Buffer
	vars := n.Vars
	if vars == nil {
		vars = map[string]string{}
	}
	if err := t.Execute(&buf, Data{Node: n, Vars: vars}); err != nil {
		return nil, fmt.Errorf("node %s: rendering: %w", n.Name, err)
	}
	if _, err := config.Parse(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("node %s: rendered config rejected: %w", n.Name, err)
	}
	return buf.Bytes(), nil
}

// Hash is the identity the node reports for a document.
func Hash(doc []byte) string { return reconfig.Hash(doc) }

// Groups are the templates in the store.
type Groups struct{ KV store.KV }

// Get returns a group.
func (g Groups) Get(name string) (Group, error) {
	var gr Group
	err := store.GetJSON(g.KV, Bucket, name, &gr)
	if errors.Is(err, store.ErrNotFound) {
		return gr, fmt.Errorf("group %s: no template set (shoestring-fleet group set)", name)
	}
	return gr, err
}

// All returns every group by name.
func (g Groups) All() ([]Group, error) {
	gs, err := store.ListJSON[Group](g.KV, Bucket)
	sort.Slice(gs, func(i, j int) bool { return gs[i].Name < gs[j].Name })
	return gs, err
}

// Set stores a group's template after checking that it parses. It is
// what a completed rollout does; a template is changed on live nodes by
// a rollout, never by Set alone.
func (g Groups) Set(name, tmpl string) (Group, error) {
	if _, err := template.New("group").Parse(tmpl); err != nil {
		return Group{}, fmt.Errorf("group %s: template: %w", name, err)
	}
	gr := Group{Name: name, Template: tmpl, Release: ReleaseOf(tmpl), Updated: time.Now().UTC()}
	return gr, store.PutJSON(g.KV, Bucket, name, gr)
}

// Drift is one node whose running config is not its desired one.
type Drift struct {
	Node    string `json:"node"`
	Group   string `json:"group"`
	Want    string `json:"want"`    // hash of the desired document
	Running string `json:"running"` // hash the node reports; empty: not reached
	Error   string `json:"error,omitempty"`
}
