package stream

import "sort"

// span is the half-open interval [lo, hi).
type span struct{ lo, hi uint64 }

// spanSet is a sorted set of disjoint, non-adjacent half-open intervals.
type spanSet struct{ s []span }

// add inserts [lo, hi) and reports whether any of it was new.
func (r *spanSet) add(lo, hi uint64) bool {
	if lo >= hi {
		return false
	}
	s := r.s
	// First span that ends at or after lo (it may touch or overlap).
	i := sort.Search(len(s), func(i int) bool { return s[i].hi >= lo })
	if i == len(s) {
		r.s = append(s, span{lo, hi})
		return true
	}
	if s[i].lo > hi {
		r.s = append(s, span{})
		copy(r.s[i+1:], r.s[i:])
		r.s[i] = span{lo, hi}
		return true
	}
	if s[i].lo <= lo && s[i].hi >= hi {
		return false
	}
	// Merge s[i..j) with [lo, hi).
	j := i
	nlo, nhi := lo, hi
	for j < len(s) && s[j].lo <= hi {
		if s[j].lo < nlo {
			nlo = s[j].lo
		}
		if s[j].hi > nhi {
			nhi = s[j].hi
		}
		j++
	}
	s[i] = span{nlo, nhi}
	r.s = append(s[:i+1], s[j:]...)
	return true
}

// find returns the index of the span containing x, or -1.
func (r *spanSet) find(x uint64) int {
	s := r.s
	i := sort.Search(len(s), func(i int) bool { return s[i].hi > x })
	if i < len(s) && s[i].lo <= x {
		return i
	}
	return -1
}

// contains reports whether x is in the set.
func (r *spanSet) contains(x uint64) bool { return r.find(x) >= 0 }

// trimBelow removes everything below x.
func (r *spanSet) trimBelow(x uint64) {
	s := r.s
	i := 0
	for i < len(s) && s[i].hi <= x {
		i++
	}
	if i > 0 {
		s = s[i:]
	}
	if len(s) > 0 && s[0].lo < x {
		s[0].lo = x
	}
	if len(s) == 0 {
		s = s[:0:0]
	}
	r.s = s
}

// keepTop drops the lowest spans so that at most n remain.
func (r *spanSet) keepTop(n int) {
	if len(r.s) > n {
		r.s = append(r.s[:0:0], r.s[len(r.s)-n:]...)
	}
}
