// Package inventory is the fleet's list of nodes and what an operator
// knows about each: where it is (site, region, country, city,
// coordinates, provider), whom it peers with, what it announces, which
// wave and config group it belongs to, and the values its config
// template needs. Nodes are added by hand, from a YAML file, or appear
// "unassigned" when discovered.
package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
)

// Bucket is the store bucket of the inventory.
const Bucket = "nodes"

// Node is one box.
type Node struct {
	Name string `yaml:"name" json:"name"`
	// API is the node's management API, host:port (its tailnet name, or
	// a loopback address in dev mode).
	API string `yaml:"api" json:"api"`
	// DNS is a service address host:port the canary queries go to
	// (default: the API's host, port 53).
	DNS       string     `yaml:"dns,omitempty" json:"dns,omitempty"`
	Site      string     `yaml:"site,omitempty" json:"site,omitempty"`
	Region    string     `yaml:"region,omitempty" json:"region,omitempty"`
	Country   string     `yaml:"country,omitempty" json:"country,omitempty"`
	City      string     `yaml:"city,omitempty" json:"city,omitempty"`
	Lat       float64    `yaml:"lat,omitempty" json:"lat,omitempty"`
	Lon       float64    `yaml:"lon,omitempty" json:"lon,omitempty"`
	Provider  string     `yaml:"provider,omitempty" json:"provider,omitempty"`
	Upstreams []Upstream `yaml:"upstreams,omitempty" json:"upstreams,omitempty"`
	// Prefixes are those the node announces (the invariant counts them).
	Prefixes []string `yaml:"prefixes,omitempty" json:"prefixes,omitempty"`
	// Wave orders rollouts: nodes with a lower label go first (after the
	// canaries); nodes without one are spread over the waves.
	Wave string `yaml:"wave,omitempty" json:"wave,omitempty"`
	// Group names the config template the node's config is rendered
	// from; none: the controller leaves its config alone.
	Group string `yaml:"group,omitempty" json:"group,omitempty"`
	// Vars are the node's values for its template.
	Vars map[string]string `yaml:"vars,omitempty" json:"vars,omitempty"`
	// Unassigned is set on a node discovered on the tailnet that nobody
	// has described yet.
	Unassigned bool `yaml:"unassigned,omitempty" json:"unassigned,omitempty"`
}

// Upstream is a BGP neighbour of the node.
type Upstream struct {
	Name        string   `yaml:"name,omitempty" json:"name,omitempty"`
	ASN         uint32   `yaml:"asn" json:"asn"`
	Communities []string `yaml:"communities,omitempty" json:"communities,omitempty"`
}

// DNSAddr is where canary queries go.
func (n Node) DNSAddr() string {
	if n.DNS != "" {
		return n.DNS
	}
	host, _, err := net.SplitHostPort(n.API)
	if err != nil {
		host = n.API
	}
	return net.JoinHostPort(host, "53")
}

// Check says what is wrong with n, naming the field.
func (n Node) Check() error {
	if n.Name == "" {
		return errors.New("name: required")
	}
	if n.API == "" {
		return fmt.Errorf("node %s: api: required (the management API's host:port)", n.Name)
	}
	if _, _, err := net.SplitHostPort(n.API); err != nil {
		return fmt.Errorf("node %s: api %q: %v", n.Name, n.API, err)
	}
	if n.DNS != "" {
		if _, _, err := net.SplitHostPort(n.DNS); err != nil {
			return fmt.Errorf("node %s: dns %q: %v", n.Name, n.DNS, err)
		}
	}
	for i, p := range n.Prefixes {
		if _, err := netip.ParsePrefix(p); err != nil {
			return fmt.Errorf("node %s: prefixes[%d] %q: %v", n.Name, i, p, err)
		}
	}
	if n.Lat < -90 || n.Lat > 90 || n.Lon < -180 || n.Lon > 180 {
		return fmt.Errorf("node %s: coordinates %v,%v out of range", n.Name, n.Lat, n.Lon)
	}
	return nil
}

// File is the inventory YAML file: a list of nodes.
type File struct {
	Nodes []Node `yaml:"nodes"`
}

// Parse reads an inventory file strictly (unknown keys are errors).
func Parse(b []byte) ([]Node, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	seen := map[string]bool{}
	for i, n := range f.Nodes {
		if err := n.Check(); err != nil {
			return nil, fmt.Errorf("inventory: nodes[%d]: %w", i, err)
		}
		if seen[n.Name] {
			return nil, fmt.Errorf("inventory: nodes[%d]: %s listed twice", i, n.Name)
		}
		seen[n.Name] = true
	}
	return f.Nodes, nil
}

// Inventory is the nodes in the store.
type Inventory struct{ KV store.KV }

// All returns every node, sorted by name.
func (inv Inventory) All() ([]Node, error) {
	ns, err := store.ListJSON[Node](inv.KV, Bucket)
	sort.Slice(ns, func(i, j int) bool { return ns[i].Name < ns[j].Name })
	return ns, err
}

// Get returns one node.
func (inv Inventory) Get(name string) (Node, error) {
	var n Node
	err := store.GetJSON(inv.KV, Bucket, name, &n)
	if errors.Is(err, store.ErrNotFound) {
		return n, fmt.Errorf("node %s: not in the inventory", name)
	}
	return n, err
}

// Put adds or replaces a node.
func (inv Inventory) Put(n Node) error {
	if err := n.Check(); err != nil {
		return err
	}
	return store.PutJSON(inv.KV, Bucket, n.Name, n)
}

// Delete removes a node.
func (inv Inventory) Delete(name string) error { return inv.KV.Delete(Bucket, name) }

// Discovered records a node seen on the tailnet: unassigned unless it is
// in the inventory already.
func (inv Inventory) Discovered(name, api string) (bool, error) {
	if _, err := inv.KV.Get(Bucket, name); err == nil {
		return false, nil
	}
	return true, inv.Put(Node{Name: name, API: api, Unassigned: true})
}
