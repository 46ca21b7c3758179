package link

import "sync"

// ReplayWindow is how many counters below the highest one received are still
// accepted (once each) in an epoch; older ones are ErrReplay. 8192 datagrams is ~10 ms
// of a 1 Gbit/s link of 1280-byte datagrams, ample reordering for a mesh hop.
const ReplayWindow = 8192

const (
	replayBlockBits = 64
	// replayBlocks must exceed ReplayWindow/64 by one block (the block being
	// overwritten as the window slides, RFC 6479 §2) and be a power of two for masking.
	replayBlocks = 256
)

// replayWindow is the RFC 6479 sliding bitmap: a ring of 64-bit blocks, where sliding
// forward clears whole blocks instead of shifting bits.
type replayWindow struct {
	mu   sync.Mutex
	next uint64 // highest counter accepted + 1; 0 = none yet
	ring [replayBlocks]uint64
}

// fresh reports, without recording, whether c would be accepted: Open calls it before
// decrypting so that replays cost no AEAD.
func (w *replayWindow) fresh(c uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c >= w.next {
		return true
	}
	if w.next-c > ReplayWindow {
		return false
	}
	return w.ring[(c/replayBlockBits)%replayBlocks]&(1<<(c%replayBlockBits)) == 0
}

// accept records c and reports whether it was new and inside the window. It must only
// be called for authenticated counters: it slides the window.
func (w *replayWindow) accept(c uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	block := c / replayBlockBits
	if c >= w.next {
		if w.next > 0 {
			top := (w.next - 1) / replayBlockBits
			n := min(block-top, replayBlocks)
			for i := uint64(1); i <= n; i++ {
				w.ring[(top+i)%replayBlocks] = 0
			}
		}
		w.next = c + 1
	} else if w.next-c > ReplayWindow {
		return false
	}
	b := &w.ring[block%replayBlocks]
	bit := uint64(1) << (c % replayBlockBits)
	if *b&bit != 0 {
		return false
	}
	*b |= bit
	return true
}
