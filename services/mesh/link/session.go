package link

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

// Data plaintext kinds: the low 7 bits of the first plaintext byte (see the package
// documentation for the bodies). Only KindPayload reaches the caller.
const (
	KindPayload      byte = 0 // caller payload (empty: a keepalive)
	KindRekeyInit    byte = 1 // initiator → responder: new epoch, ephemeral key
	KindRekeyAck     byte = 2 // responder → initiator: new epoch, ephemeral key
	KindRekeyConfirm byte = 3 // "I send in the new epoch now", both ways

	// kindPadded is set in the kind byte of a padded plaintext, whose kind is followed
	// by a 2-byte payload length. It makes the layout self-describing, so two nodes
	// configured with different Padding still understand each other.
	kindPadded byte = 0x80
)

// Rekey and counter limits.
const (
	// RekeyInterval is the shortest epoch life (docs/architecture.md §Links: a new key
	// every second of traffic or every two round trips); the actual interval is
	// max(RekeyInterval, 2×rtt).
	RekeyInterval = time.Second
	// RetransmitInterval is the shortest wait before a control message is resent;
	// the actual wait is max(RetransmitInterval, 2×rtt).
	RetransmitInterval = 200 * time.Millisecond
	// RejectAfterCounter: Seal refuses (ErrExpired) once an epoch's send counter
	// reaches it, and Open drops counters at or above it. Rekeying resets counters, so
	// only a session that cannot rekey ever gets there.
	RejectAfterCounter = 1 << 60
	// MaxRetired and RetainRetired bound how long a retired epoch still opens
	// datagrams (receive only): at most the MaxRetired newest retired epochs, each
	// for at most RetainRetired after it stopped being current. A datagram sealed
	// before a rekey may arrive after several more: an end-to-end session's rekey
	// messages overtake bulk data waiting seconds in the hops' route buffers. Later
	// than that it is dropped as ErrEpoch. The bound is also how long a stolen
	// receive key stays useful to someone holding old ciphertext.
	MaxRetired    = 16
	RetainRetired = time.Minute
)

const (
	chainLabel   = "skyfleet chain0"
	rekeyLabel   = "skyfleet rekey"
	rekeyBodyLen = 8 + KeyLen
)

// keypair is one key epoch: a key per direction with its own counters and replay
// window. The send counter and the receive window sit on separate cache lines because
// several goroutines seal while another opens.
type keypair struct {
	epoch   uint64
	wire    byte // epoch & 0xff, the Data header's epoch byte
	send    cipher.AEAD
	recv    cipher.AEAD
	chain   [32]byte // secret for deriving epoch+1; read and written under Session.mu
	created time.Time
	retired time.Time // when it stopped being cur; set under Session.mu before it is published in keyset.old
	// traffic: caller data was sealed or opened in this epoch (for Tick's schedule).
	traffic atomic.Bool
	// firstRecv: UnixNano of the first datagram opened in this epoch, 0 = none yet.
	// Proves the peer seals in this epoch.
	firstRecv atomic.Int64

	_       cpu.CacheLinePad
	sendCtr atomic.Uint64
	_       cpu.CacheLinePad
	window  replayWindow
}

func newKeypair(epoch uint64, chain, send, recv [32]byte, now time.Time) *keypair {
	kp := &keypair{epoch: epoch, wire: byte(epoch), chain: chain, created: now}
	var err error
	if kp.send, err = chacha20poly1305.New(send[:]); err != nil {
		panic(err) // only for a wrong key length
	}
	if kp.recv, err = chacha20poly1305.New(recv[:]); err != nil {
		panic(err)
	}
	return kp
}

// keyset is an immutable snapshot of the live epochs, swapped atomically so that Seal
// and Open take no lock to find their keys. cur is the epoch we send in; next (only on
// the responder) is installed by a rekey init and becomes cur as soon as anything
// arrives in it; old holds the retired epochs, newest first, receive only, so that a
// datagram sealed before a rekey still opens after it however long it waited in the
// routers' buffers (at most MaxRetired epochs and RetainRetired; see retire). Their
// epochs are consecutive, so their wire bytes differ.
type keyset struct {
	cur, next *keypair
	old       []*keypair
}

// prev is the epoch retired last, or nil.
func (ks *keyset) prev() *keypair {
	if len(ks.old) == 0 {
		return nil
	}
	return ks.old[0]
}

func (ks *keyset) find(wire byte) *keypair {
	if ks.cur.wire == wire {
		return ks.cur
	}
	if ks.next != nil && ks.next.wire == wire {
		return ks.next
	}
	for _, kp := range ks.old {
		if kp.wire == wire {
			return kp
		}
	}
	return nil
}

// retire returns the keyset after a rekey: cur becomes newCur, the former cur joins
// old, and old keeps at most MaxRetired epochs, none retired before now-RetainRetired.
func (ks *keyset) retire(newCur *keypair, now time.Time) *keyset {
	ks.cur.retired = now
	old := make([]*keypair, 0, min(len(ks.old)+1, MaxRetired))
	old = append(old, ks.cur)
	for _, kp := range ks.old {
		if len(old) == MaxRetired || now.Sub(kp.retired) > RetainRetired {
			break // old is newest first: the rest are older still
		}
		old = append(old, kp)
	}
	return &keyset{cur: newCur, old: old}
}

// expire returns ks without the retired epochs older than RetainRetired, or ks
// itself when there are none.
func (ks *keyset) expire(now time.Time) *keyset {
	for i, kp := range ks.old {
		if now.Sub(kp.retired) > RetainRetired {
			return &keyset{cur: ks.cur, next: ks.next, old: ks.old[:i:i]}
		}
	}
	return ks
}

// Session is an established encrypted session with one peer: a neighbour, or the far
// end of a route. Seal, Open, Tick and the accessors are safe for concurrent use; the
// data path takes no session-wide lock (an atomic load of the keys, an atomic counter
// for sending, the epoch's small replay-window mutex for receiving).
type Session struct {
	remote      [KeyLen]byte
	localIndex  uint32
	remoteIndex uint32
	initiator   bool
	padding     int
	rand        io.Reader
	established time.Time
	// clear is set for a clear session (clear.go): signed, not encrypted.
	clear *clearState

	keys atomic.Pointer[keyset]

	// Control state: rekey and confirmation. Rare path.
	mu           sync.Mutex
	pending      *rekeyPending // initiator: rekey init awaiting its ack
	confirmSent  time.Time     // initiator: last confirm sent for an unconfirmed cur
	ackEpoch     uint64        // responder: epoch of the cached ack (== next.epoch)
	ackInitPub   [KeyLen]byte  // responder: ephemeral of the rekey init it answers
	ackBody      [rekeyBodyLen]byte
	rekeys       atomic.Uint64
	retransmits  atomic.Uint64
	replays      atomic.Uint64
	authFailures atomic.Uint64

	_         cpu.CacheLinePad
	txPackets atomic.Uint64
	txBytes   atomic.Uint64
	_         cpu.CacheLinePad
	rxPackets atomic.Uint64
	rxBytes   atomic.Uint64
	lastRecv  atomic.Int64
}

type rekeyPending struct {
	epoch  uint64
	priv   []byte // the ephemeral's 32-byte scalar, cleared once used
	body   [rekeyBodyLen]byte
	sentAt time.Time
}

// newSession builds a session from the Noise Split keys and the handshake hash, both
// sides alike: the initiator sends under k.i2r and receives under k.r2i, the responder
// the other way round.
func newSession(hs *Handshaker, initiator bool, remote [KeyLen]byte, localIndex, remoteIndex uint32, k handshakeKeys, now time.Time) *Session {
	k1, k2 := k.i2r, k.r2i
	s := &Session{
		remote:      remote,
		localIndex:  localIndex,
		remoteIndex: remoteIndex,
		initiator:   initiator,
		padding:     hs.padding,
		rand:        hs.rng(),
		established: now,
	}
	ikm := make([]byte, 0, 64)
	ikm = append(append(ikm, k1[:]...), k2[:]...)
	c, err := hkdf.Key(sha256.New, ikm, k.hash, chainLabel, 32)
	if err != nil {
		panic(err)
	}
	var chain [32]byte
	copy(chain[:], c)
	send, recv := k1, k2
	if !initiator {
		send, recv = k2, k1
	}
	kp := newKeypair(0, chain, send, recv, now)
	if initiator {
		// Epoch 0 needs no confirmation: the responder has held it since Respond.
		kp.firstRecv.Store(now.UnixNano() | 1)
	}
	s.keys.Store(&keyset{cur: kp})
	return s
}

// deriveNext computes epoch kp.epoch+1 from kp's chain and the rekey ECDH output dh.
func (s *Session) deriveNext(kp *keypair, dh []byte, now time.Time) *keypair {
	epoch := kp.epoch + 1
	var info [len(rekeyLabel) + 8]byte
	copy(info[:], rekeyLabel)
	binary.BigEndian.PutUint64(info[len(rekeyLabel):], epoch)
	out, err := hkdf.Key(sha256.New, dh, kp.chain[:], string(info[:]), 96)
	if err != nil {
		panic(err)
	}
	var chain, i2r, r2i [32]byte
	copy(chain[:], out[0:32])
	copy(i2r[:], out[32:64])
	copy(r2i[:], out[64:96])
	if s.initiator {
		return newKeypair(epoch, chain, i2r, r2i, now)
	}
	return newKeypair(epoch, chain, r2i, i2r, now)
}

// Remote returns the peer's 33-byte compressed static key, authenticated by the
// handshake (a fresh copy).
func (s *Session) Remote() []byte { return append([]byte(nil), s.remote[:]...) }

// LocalIndex is this side's receiver index: the peer puts it in every Data datagram.
func (s *Session) LocalIndex() uint32 { return s.localIndex }

// RemoteIndex is the peer's receiver index, which Seal writes into every datagram.
func (s *Session) RemoteIndex() uint32 { return s.remoteIndex }

// Initiator reports whether this side sent the Init. The initiator drives rekeying.
func (s *Session) Initiator() bool { return s.initiator }

// Established is the now passed to Respond or Finish when the session was made.
func (s *Session) Established() time.Time { return s.established }

// LastReceived is the now of the last datagram Open authenticated (zero if none).
// It is the liveness signal: see Tick.
func (s *Session) LastReceived() time.Time {
	if n := s.lastRecv.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// PayloadCapacity returns the largest payload whose Data datagram is at most mtu
// bytes when the sender pads to padding (Config.Padding; 0 for none), capped at
// MaxPayload, or -1 if not even an empty payload fits. With padding P the answer is
// P·⌊(mtu-HeaderLen)/P⌋ - TagLen - 3, which is less than mtu-35 unless P divides
// mtu-HeaderLen: use it, not a fixed overhead, to size what goes into one datagram.
func PayloadCapacity(mtu, padding int) int {
	var n int
	if padding <= 0 {
		n = mtu - Overhead - 1
	} else {
		n = (mtu-HeaderLen)/padding*padding - TagLen - 3
	}
	return min(max(n, -1), MaxPayload)
}

// plaintextLen is the plaintext length for a payload of n bytes.
func (s *Session) plaintextLen(n int) int {
	if s.padding == 0 {
		return 1 + n
	}
	ct := 3 + n + TagLen
	ct = (ct + s.padding - 1) / s.padding * s.padding
	return ct - TagLen
}

// Seal appends one Data datagram carrying payload to dst; no allocation when
// cap(dst) suffices. The datagram is len(payload)+Overhead+1 bytes, or with
// Config.Padding > 0, HeaderLen plus the next multiple of Padding at or above
// len(payload)+3+TagLen. An empty payload is a keepalive: the peer's Open returns it
// as a non-nil empty payload. payload may overlap dst's spare capacity.
//
// Errors: ErrTooLarge (len(payload) > MaxPayload), ErrExpired (counter exhausted:
// handshake again). Safe for concurrent use; concurrent datagrams may leave in any
// order, which the peer's replay window absorbs.
func (s *Session) Seal(dst, payload []byte) ([]byte, error) {
	kp := s.keys.Load().cur
	if s.clear != nil {
		return s.sealClear(dst, kp, KindPayload, payload)
	}
	out, err := s.seal(dst, kp, KindPayload, payload)
	if err == nil && !kp.traffic.Load() {
		kp.traffic.Store(true)
	}
	return out, err
}

func (s *Session) seal(dst []byte, kp *keypair, kind byte, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return nil, ErrTooLarge
	}
	ptLen := s.plaintextLen(len(payload))
	total := HeaderLen + ptLen + TagLen
	ctr, err := kp.nextCounter()
	if err != nil {
		return nil, err
	}
	out, d := sliceForAppend(dst, total)
	pt := d[HeaderLen : HeaderLen+ptLen]
	// Payload first: if it overlaps d (a caller building in place), copy is a memmove
	// and the header bytes written next cannot clobber it.
	if s.padding == 0 {
		copy(pt[1:], payload)
	} else {
		copy(pt[3:], payload)
		binary.BigEndian.PutUint16(pt[1:3], uint16(len(payload)))
		clear(pt[3+len(payload):])
	}
	pt[0] = kind
	if s.padding > 0 {
		pt[0] |= kindPadded
	}
	d[0], d[1], d[2], d[3] = TypeData, kp.wire, 0, 0
	binary.BigEndian.PutUint32(d[4:8], s.remoteIndex)
	binary.BigEndian.PutUint64(d[8:16], ctr)
	kp.send.Seal(pt[:0], d[4:16], pt, d[:HeaderLen])
	s.txPackets.Add(1)
	s.txBytes.Add(uint64(total))
	return out, nil
}

// sliceForAppend extends in by n bytes, reusing its capacity when it suffices, and
// returns the whole slice and the new tail.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	return head, head[len(in):]
}

// Open authenticates and decrypts one Data datagram and returns what it carried:
//
//   - payload != nil, err == nil: caller data, appended to dst (dst's bytes, then the
//     payload). An empty payload (len 0, non-nil) is a keepalive.
//   - payload == nil, err == nil: a link control message (rekey), handled here.
//   - reply != nil (with either of the above): a datagram the caller must send to the
//     peer, as it would a Seal result (rekey ack, rekey confirm).
//   - err != nil: drop the datagram; nothing changed except counters. ErrShort,
//     ErrType, ErrEpoch (also ErrReplay: epoch retired), ErrReplay (counter seen or
//     older than ReplayWindow), ErrAuth (AEAD failure or bad control message key).
//
// Decryption writes into dst's spare capacity (allocating only when it is less than
// len(datagram)-Overhead) and must not overlap datagram, except that dst may be
// datagram[:0] to decrypt in place. The window is checked before the AEAD so replays
// cost none, and updated after it so forgeries cannot move it. now feeds
// LastReceived and the rekey schedule. Safe for concurrent use.
func (s *Session) Open(dst, datagram []byte, now time.Time) (payload []byte, reply []byte, err error) {
	if s.clear != nil {
		return s.openClear(dst, datagram, now)
	}
	if len(datagram) < Overhead+1 {
		return nil, nil, ErrShort
	}
	if datagram[0] != TypeData || datagram[2]|datagram[3] != 0 {
		return nil, nil, ErrType
	}
	ks := s.keys.Load()
	kp := ks.find(datagram[1])
	if kp == nil {
		s.replays.Add(1)
		return nil, nil, ErrEpoch
	}
	ctr, err := s.fresh(kp, datagram)
	if err != nil {
		return nil, nil, err
	}
	ct := datagram[HeaderLen:]
	ptLen := len(ct) - TagLen
	var out, buf []byte
	inPlace := len(dst) == 0 && cap(dst) > 0 && &dst[:1][0] == &datagram[0]
	if inPlace {
		buf = datagram[HeaderLen : HeaderLen+ptLen]
		out = datagram
	} else {
		out, buf = sliceForAppend(dst, ptLen)
	}
	pt, err := kp.recv.Open(buf[:0], datagram[4:16], ct, datagram[:HeaderLen])
	if err != nil {
		s.authFailures.Add(1)
		return nil, nil, ErrAuth
	}
	stamp, ok := s.received(kp, ctr, len(datagram), now)
	if !ok {
		return nil, nil, ErrReplay
	}
	if kp.firstRecv.Load() == 0 {
		kp.firstRecv.CompareAndSwap(0, stamp)
	}
	if kp == ks.next {
		reply = s.promote(kp, now)
	}

	kind, body := pt[0], pt[1:]
	if kind&kindPadded != 0 {
		kind &^= kindPadded
		if len(body) < 2 {
			return nil, reply, ErrShort
		}
		n := int(binary.BigEndian.Uint16(body))
		if n > len(body)-2 {
			return nil, reply, ErrShort
		}
		body = body[2 : 2+n]
	}
	switch kind {
	case KindPayload:
		if !kp.traffic.Load() {
			kp.traffic.Store(true)
		}
		n := len(dst)
		if inPlace {
			n = 0
		}
		copy(out[n:], body) // a 1- or 3-byte memmove: cheaper than a second buffer
		return out[:n+len(body)], reply, nil
	case KindRekeyInit:
		r, err := s.onRekeyInit(body, now)
		if r != nil {
			reply = r
		}
		return nil, reply, err
	case KindRekeyAck:
		r, err := s.onRekeyAck(kp, body, now)
		if r != nil {
			reply = r
		}
		return nil, reply, err
	case KindRekeyConfirm:
		if !s.initiator && reply == nil && kp == s.keys.Load().cur {
			// The initiator keeps confirming until it hears from us in the epoch;
			// answer so that it does even if we have no data to send.
			reply, _ = s.seal(nil, kp, KindRekeyConfirm, nil)
		}
		return nil, reply, nil
	}
	return nil, reply, nil // reserved kinds: ignored for forward compatibility
}

// nextCounter takes the epoch's next send counter, or ErrExpired once it
// reaches RejectAfterCounter. The limit is checked before taking a counter,
// so the counter cannot run away.
func (kp *keypair) nextCounter() (uint64, error) {
	if kp.sendCtr.Load() >= RejectAfterCounter {
		return 0, ErrExpired
	}
	ctr := kp.sendCtr.Add(1) - 1
	if ctr >= RejectAfterCounter {
		return 0, ErrExpired
	}
	return ctr, nil
}

// fresh reads the counter of datagram (a Data or ClearData header) and checks
// it before any authentication is spent on it: at or above
// RejectAfterCounter is ErrAuth, seen or older than the window of epoch kp is
// ErrReplay (each counted). received records it once authenticated.
func (s *Session) fresh(kp *keypair, datagram []byte) (uint64, error) {
	ctr := binary.BigEndian.Uint64(datagram[8:16])
	if ctr >= RejectAfterCounter {
		s.authFailures.Add(1)
		return 0, ErrAuth
	}
	if !kp.window.fresh(ctr) {
		s.replays.Add(1)
		return 0, ErrReplay
	}
	return ctr, nil
}

// received records an authenticated datagram of n bytes with counter ctr in
// epoch kp at now: the replay window slides (false, counted, when ctr was
// taken meanwhile by a concurrent copy or fell out of the window), the counters
// and LastReceived move. It returns now's stamp (UnixNano, never 0).
func (s *Session) received(kp *keypair, ctr uint64, n int, now time.Time) (int64, bool) {
	if !kp.window.accept(ctr) {
		s.replays.Add(1)
		return 0, false
	}
	s.rxPackets.Add(1)
	s.rxBytes.Add(uint64(n))
	stamp := now.UnixNano() | 1
	if s.lastRecv.Load() != stamp {
		s.lastRecv.Store(stamp)
	}
	return stamp, true
}

// promote makes the responder's next epoch current, once something arrived in it
// (the initiator only sends in it after the ack). It returns a confirm sealed in the
// new epoch so the initiator learns we switched even if we have no data to send.
func (s *Session) promote(kp *keypair, now time.Time) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks := s.keys.Load()
	if ks.next != kp {
		return nil // a concurrent Open did it
	}
	ks.cur.traffic.Store(false)
	s.keys.Store(ks.retire(kp, now))
	s.rekeys.Add(1)
	out, _ := s.seal(nil, kp, KindRekeyConfirm, nil)
	return out
}

// onRekeyInit is the responder's half of a rekey: derive the next epoch from a fresh
// ephemeral, install it for receiving, keep sending in the current one, and ack in
// the current one. A duplicate init (its ack was lost) gets the cached ack again.
func (s *Session) onRekeyInit(body []byte, now time.Time) ([]byte, error) {
	if s.initiator {
		return nil, nil // only the handshake initiator rekeys; ignore
	}
	if len(body) < rekeyBodyLen {
		return nil, ErrShort
	}
	epoch := binary.BigEndian.Uint64(body[:8])
	pub := body[8:rekeyBodyLen]
	s.mu.Lock()
	defer s.mu.Unlock()
	ks := s.keys.Load()
	switch {
	case ks.next != nil && epoch == ks.next.epoch:
		if s.ackEpoch != epoch || string(pub) != string(s.ackInitPub[:]) {
			return nil, nil // not the init we answered: stale or bogus
		}
		return s.seal(nil, ks.cur, KindRekeyAck, s.ackBody[:])
	case ks.next == nil && epoch == ks.cur.epoch+1:
	default:
		return nil, nil // old (already promoted) or out of sequence
	}
	eph, err := generateKey(s.rand)
	if err != nil {
		return nil, err
	}
	defer clear(eph.Private)
	dh, err := ecdh(eph.Private, pub)
	if err != nil {
		s.authFailures.Add(1)
		return nil, ErrAuth
	}
	next := s.deriveNext(ks.cur, dh, now)
	s.keys.Store(&keyset{cur: ks.cur, next: next, old: ks.old})
	s.ackEpoch = epoch
	copy(s.ackInitPub[:], pub)
	binary.BigEndian.PutUint64(s.ackBody[:8], epoch)
	copy(s.ackBody[8:], eph.Public)
	return s.seal(nil, ks.cur, KindRekeyAck, s.ackBody[:])
}

// onRekeyAck is the initiator's completion of a rekey: derive the same epoch, make it
// current (the old one becomes previous, receive only) and send a confirm in it.
func (s *Session) onRekeyAck(kp *keypair, body []byte, now time.Time) ([]byte, error) {
	if !s.initiator {
		return nil, nil
	}
	if len(body) < rekeyBodyLen {
		return nil, ErrShort
	}
	epoch := binary.BigEndian.Uint64(body[:8])
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending
	ks := s.keys.Load()
	if p == nil || epoch != p.epoch || epoch != ks.cur.epoch+1 {
		return nil, nil // duplicate or stale ack
	}
	dh, err := ecdh(p.priv, body[8:rekeyBodyLen])
	if err != nil {
		s.authFailures.Add(1)
		return nil, ErrAuth
	}
	next := s.deriveNext(ks.cur, dh, now)
	clear(p.priv)
	s.pending = nil
	ks.cur.traffic.Store(false)
	s.keys.Store(ks.retire(next, now))
	s.rekeys.Add(1)
	s.confirmSent = now
	out, _ := s.seal(nil, next, KindRekeyConfirm, nil)
	return out, nil
}

// Tick returns a datagram to send now (rekey init or its retransmission, or a rekey
// confirm retransmission), or nil. Send it to the peer like a Seal result.
//
// Call it periodically (every 50-100 ms, or at least every rtt) with the current time
// and the smoothed round-trip time to the peer (0 if unknown). Only the handshake
// initiator's Tick ever returns something, so the two sides never race:
//
//   - a rekey init when the current epoch is at least max(RekeyInterval, 2×rtt) old,
//     caller data was sent or received in it, the peer has been seen sending in it for
//     at least max(RetransmitInterval, 2×rtt) (so the epoch being retired by this
//     rekey is no longer the peer's current one), and no rekey is pending;
//   - the pending rekey init again after max(RetransmitInterval, 2×rtt) without an
//     ack, indefinitely (see Stats.RekeyRetransmits);
//   - a rekey confirm again, on the same schedule, while the peer has not yet been
//     seen sending in the newest epoch.
//
// On both sides Tick also forgets retired epochs older than RetainRetired.
//
// Liveness is the caller's: a peer that stopped answering shows as a LastReceived
// that no longer advances (and a growing RekeyRetransmits on the initiator).
func (s *Session) Tick(now time.Time, rtt time.Duration) (out []byte) {
	if s.clear != nil {
		return nil // one epoch, nothing to rekey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ks := s.keys.Load()
	if e := ks.expire(now); e != ks {
		ks = e
		s.keys.Store(ks)
	}
	if !s.initiator {
		return nil
	}
	retx := max(RetransmitInterval, 2*rtt)
	cur := ks.cur
	if p := s.pending; p != nil {
		if now.Sub(p.sentAt) < retx {
			return nil
		}
		out, err := s.seal(nil, cur, KindRekeyInit, p.body[:])
		if err != nil {
			return nil
		}
		p.sentAt = now
		s.retransmits.Add(1)
		return out
	}
	first := cur.firstRecv.Load()
	if first == 0 {
		if now.Sub(s.confirmSent) < retx {
			return nil
		}
		out, err := s.seal(nil, cur, KindRekeyConfirm, nil)
		if err != nil {
			return nil
		}
		s.confirmSent = now
		s.retransmits.Add(1)
		return out
	}
	if now.Sub(cur.created) < max(RekeyInterval, 2*rtt) || now.Sub(time.Unix(0, first)) < retx {
		return nil
	}
	if prev := ks.prev(); !cur.traffic.Load() && (prev == nil || !prev.traffic.Load()) {
		return nil // idle link: no rekey, nothing to protect
	}
	eph, err := generateKey(s.rand)
	if err != nil {
		return nil
	}
	p := &rekeyPending{epoch: cur.epoch + 1, priv: eph.Private, sentAt: now}
	binary.BigEndian.PutUint64(p.body[:8], p.epoch)
	copy(p.body[8:], eph.Public)
	out, err = s.seal(nil, cur, KindRekeyInit, p.body[:])
	if err != nil {
		clear(eph.Private)
		return nil
	}
	s.pending = p
	return out
}

// SessionStats is a snapshot of a Session's counters, for status pages and drop
// accounting. Packets and bytes count whole datagrams, control messages included.
type SessionStats struct {
	Epoch            uint64    `json:"epoch"`             // current send epoch, 0 after the handshake
	Rekeys           uint64    `json:"rekeys"`            // epochs this side switched to
	RekeyPending     bool      `json:"rekey_pending"`     // initiator: a rekey init awaits its ack
	RekeyRetransmits uint64    `json:"rekey_retransmits"` // control messages Tick sent again
	Replays          uint64    `json:"replays"`           // Data dropped as ErrReplay (ErrEpoch included)
	AuthFailures     uint64    `json:"auth_failures"`     // Data dropped as ErrAuth
	SentPackets      uint64    `json:"sent_packets"`      // datagrams sealed
	SentBytes        uint64    `json:"sent_bytes"`        // their total length
	RecvPackets      uint64    `json:"recv_packets"`      // datagrams opened: authenticated and fresh
	RecvBytes        uint64    `json:"recv_bytes"`        // their total length
	Established      time.Time `json:"established"`       // see Session.Established
	LastReceived     time.Time `json:"last_received"`     // see Session.LastReceived; zero if nothing yet
}

// Stats returns the session's counters: epoch, rekeys completed, replays dropped, auth failures, sent/received packets and bytes.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	pending := s.pending != nil
	s.mu.Unlock()
	return SessionStats{
		Epoch:            s.keys.Load().cur.epoch,
		Rekeys:           s.rekeys.Load(),
		RekeyPending:     pending,
		RekeyRetransmits: s.retransmits.Load(),
		Replays:          s.replays.Load(),
		AuthFailures:     s.authFailures.Load(),
		SentPackets:      s.txPackets.Load(),
		SentBytes:        s.txBytes.Load(),
		RecvPackets:      s.rxPackets.Load(),
		RecvBytes:        s.rxBytes.Load(),
		Established:      s.established,
		LastReceived:     s.LastReceived(),
	}
}
