package dnsserver

import (
	"fmt"
	"testing"
)

// TestNameIndex fills an index from far below its first size (so it
// grows several times) and finds every name, and none that is not there.
func TestNameIndex(t *testing.T) {
	var nodes []node
	x := newNameIndex(1)
	for i := range 50000 {
		w := mustWire(fmt.Sprintf("h%d.example.", i))
		nodes = append(nodes, node{key: w})
		x.add(nodes, w, int32(i))
	}
	if len(x.slots)*3/4 < x.n || x.n != 50000 {
		t.Fatalf("%d names in %d slots", x.n, len(x.slots))
	}
	for i := range 50000 {
		if p, ok := x.getBytes(nodes, []byte(mustWire(fmt.Sprintf("h%d.example.", i)))); !ok || p != int32(i) {
			t.Fatalf("h%d: %d, %v", i, p, ok)
		}
		if p, ok := x.get(nodes, mustWire(fmt.Sprintf("x%d.example.", i))); ok {
			t.Fatalf("x%d found at %d", i, p)
		}
	}
	if got := x.bytes(); got != int64(indexSlots(50000))*8 || got > 50000*22 {
		t.Errorf("%d bytes for 50000 names", got)
	}
}

// TestNameIndexZero: a zero nameIndex finds nothing and takes names.
func TestNameIndexZero(t *testing.T) {
	var x nameIndex
	nodes := []node{{key: mustWire("a.example.")}}
	if _, ok := x.get(nodes, nodes[0].key); ok {
		t.Fatal("found in an empty index")
	}
	x.add(nodes, nodes[0].key, 0)
	if p, ok := x.get(nodes, nodes[0].key); !ok || p != 0 {
		t.Fatalf("got %d, %v", p, ok)
	}
}
