package netns

import (
	"fmt"
	"net/netip"
)

// Connect links a and b like Link, with the next automatic addresses (see AutoAddrs). The K-th link
// that Connect makes in a Net (K = 1, 2, ...) is the /30 10.77.K.0/30: a gets
// 10.77.K.1/30 and b gets 10.77.K.2/30. Past 254 links the numbering goes on in
// 10.78.x, 10.79.x and so on: link K uses 10.(77+(K-1)/254).((K-1)%254+1).{1,2}/30.
// The addresses exist only inside the Net's namespaces.
func (n *Net) Connect(a, b *NS) *Link {
	n.tb.Helper()
	l := n.connect(a, b)
	n.waitUp([]*Link{l})
	return l
}

// connect is Connect without waiting for the link to be up.
func (n *Net) connect(a, b *NS) *Link {
	n.tb.Helper()
	n.mu.Lock()
	n.auto++
	k := n.auto
	n.mu.Unlock()
	ipA, ipB := AutoAddrs(k)
	return n.link(a, b, ipA.String(), ipB.String())
}

// AutoAddrs returns the two addresses that Connect gives its k-th link (k >= 1).
func AutoAddrs(k int) (a, b netip.Prefix) {
	if k < 1 || k > 254*(255-77) {
		panic(fmt.Sprintf("netns: automatic link number %d out of range", k))
	}
	second := byte(77 + (k-1)/254)
	third := byte((k-1)%254 + 1)
	a = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, second, third, 1}), 30)
	b = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, second, third, 2}), 30)
	return a, b
}

// Topology is a set of nodes and the links between them, as Line and Grid build them.
type Topology struct {
	// Nodes are the nodes: Line's in order along the line, Grid's row by row.
	Nodes []*NS
	// Links are the links in the order they were made; see Line and Grid.
	Links []*Link
	// Rows and Cols are Grid's dimensions; a Line is 1 row of len(Nodes) columns.
	Rows, Cols int
}

// At returns the node at row r, column c (both from 0).
func (t *Topology) At(r, c int) *NS {
	if r < 0 || r >= t.Rows || c < 0 || c >= t.Cols {
		panic(fmt.Sprintf("netns: node (%d,%d) outside a %dx%d topology", r, c, t.Rows, t.Cols))
	}
	return t.Nodes[r*t.Cols+c]
}

// Between returns the link between a and b, or nil if they are not neighbours.
func (t *Topology) Between(a, b *NS) *Link {
	for _, l := range t.Links {
		if (l.A.NS == a && l.B.NS == b) || (l.A.NS == b && l.B.NS == a) {
			return l
		}
	}
	return nil
}

// Neighbours returns the links ns is on, in the order they were made (which is the
// order of its interfaces eth0, eth1, ...).
func (t *Topology) Neighbours(ns *NS) []*Link {
	var out []*Link
	for _, l := range t.Links {
		if l.A.NS == ns || l.B.NS == ns {
			out = append(out, l)
		}
	}
	return out
}

// Line makes count nodes named n0 ... n{count-1} and links each to the next with
// Connect: Links[i] joins Nodes[i] (end A) and Nodes[i+1] (end B). In a Net that has
// no other Connect links, Links[i] is 10.77.{i+1}.0/30, so n_i reaches n_{i+1} at
// 10.77.{i+1}.2 and n_{i+1} reaches n_i at 10.77.{i+1}.1.
func (n *Net) Line(count int) *Topology {
	n.tb.Helper()
	if count < 1 {
		n.tb.Fatalf("netns: Line(%d)", count)
	}
	t := &Topology{Rows: 1, Cols: count}
	for i := range count {
		t.Nodes = append(t.Nodes, n.Node(fmt.Sprintf("n%d", i)))
	}
	for i := 0; i+1 < count; i++ {
		t.Links = append(t.Links, n.connect(t.Nodes[i], t.Nodes[i+1]))
	}
	n.waitUp(t.Links)
	return t
}

// Grid makes rows*cols nodes named r{R}c{C} and links each to its right and lower
// neighbours with Connect: rows*(cols-1) + (rows-1)*cols links, so 12 for 3x3. Links
// are made node by node, row by row, each node's link to the right before its link
// down; A is always the upper or left end. Find one with Between, e.g.
// top.Between(top.At(0, 0), top.At(0, 1)).
func (n *Net) Grid(rows, cols int) *Topology {
	n.tb.Helper()
	if rows < 1 || cols < 1 {
		n.tb.Fatalf("netns: Grid(%d, %d)", rows, cols)
	}
	t := &Topology{Rows: rows, Cols: cols}
	for r := range rows {
		for c := range cols {
			t.Nodes = append(t.Nodes, n.Node(fmt.Sprintf("r%dc%d", r, c)))
		}
	}
	for r := range rows {
		for c := range cols {
			if c+1 < cols {
				t.Links = append(t.Links, n.connect(t.At(r, c), t.At(r, c+1)))
			}
			if r+1 < rows {
				t.Links = append(t.Links, n.connect(t.At(r, c), t.At(r+1, c)))
			}
		}
	}
	n.waitUp(t.Links)
	return t
}
