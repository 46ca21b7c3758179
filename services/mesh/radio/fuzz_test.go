package radio

import (
	"bytes"
	"testing"
	"time"
)

// FuzzFragments: any sequence of info fields, from two senders, parses and
// reassembles without a panic; every datagram delivered is made of data that
// arrived, within 16 fragments, and the reassembler stays within its caps.
func FuzzFragments(f *testing.F) {
	f.Add(appendFragment(nil, 1, 0, 1, []byte("whole")))
	two := append(appendFragment(nil, 2, 0, 2, []byte("hello, ")), 0xff)
	two = append(two, appendFragment(nil, 2, 1, 2, []byte("world"))...)
	f.Add(two)
	f.Add([]byte{'S', 0x20, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newReassembler()
		now := time.Unix(1e9, 0)
		// 0xff separates info fields; the byte after it picks the sender.
		for i, info := range bytes.Split(in, []byte{0xff}) {
			src := "W1AW"
			if i%3 == 2 {
				src = "N0CALL-7"
			}
			now = now.Add(time.Duration(len(info)) * time.Second)
			fr, err := parseFragment(info)
			if err != nil {
				continue
			}
			if fr.index >= fr.count || fr.count > MaxFragments {
				t.Fatalf("fragment %d of %d accepted", fr.index, fr.count)
			}
			if d := r.add(src, fr, now); len(d) > MaxFragments*len(in) {
				t.Fatalf("a %d-byte datagram from %d bytes of input", len(d), len(in))
			}
			if len(r.partials) > maxPartials || len(r.done) > maxDone {
				t.Fatalf("%d partials, %d done", len(r.partials), len(r.done))
			}
		}
	})
}
