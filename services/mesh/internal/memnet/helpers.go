package memnet

import (
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// Line returns the edges of a line of n nodes: 0-1, 1-2, ..., (n-2)-(n-1).
func Line(n int) [][2]int {
	var e [][2]int
	for i := 0; i+1 < n; i++ {
		e = append(e, [2]int{i, i + 1})
	}
	return e
}

// Grid returns the edges of a rows × cols grid, nodes numbered row by row.
func Grid(rows, cols int) [][2]int {
	var e [][2]int
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			i := r*cols + c
			if c+1 < cols {
				e = append(e, [2]int{i, i + 1})
			}
			if r+1 < rows {
				e = append(e, [2]int{i, i + cols})
			}
		}
	}
	return e
}

// Converged reports whether graphs[i], the graph of the node with key keys[i],
// holds a path to every other key.
func Converged(graphs []*topology.Graph, keys []topology.Key) bool {
	for i, g := range graphs {
		for j, k := range keys {
			if i == j {
				continue
			}
			if _, err := g.ShortestByHops(k); err != nil {
				return false
			}
		}
	}
	return true
}

// WaitFor polls cond every 10 ms until it holds, failing tb with what was awaited
// if it does not within the given time.
func WaitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
