package link

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/skyfleet/skyfleet/services/identity"
)

// Clear links: the handshake and the session of a link on an amateur-radio
// channel, where nothing may be encrypted (47 CFR 97.113(a)(4): no messages
// "encoded for the purpose of obscuring their meaning"). Every datagram goes in
// clear and ends with a signature by its sender's node key, so a station can
// still only speak as itself and a copy cannot be replayed; anyone can read it.
// The network key only keys the mac on the two handshake messages (as on a
// Noise link), so nodes without it get no session.
//
// Wire formats (all integers big endian; "sig" is identity.SignCompact, 65
// bytes, over SHA-256 of a label and every byte before it, as noted):
//
//	ClearInit (TypeClearInit = 4), ClearInitLen + len(payload) bytes:
//	  0      type = 4
//	  1..3   reserved, zero
//	  4..7   sender index
//	  8..40  the initiator's static key (33)
//	  41..73 the responder's static key (33)
//	  74..81 timestamp (as in an Init: greater than the last from this key)
//	  82..   payload (at most MaxInitPayload)
//	  sig    by the initiator, label "skyfleet clear init v1"
//	  last16 mac
//
//	ClearResp (TypeClearResp = 5), ClearRespLen = 126 bytes:
//	  0      type = 5
//	  1..3   reserved, zero
//	  4..7   sender index: the responder's receiver index
//	  8..11  receiver index: the initiator's sender index
//	  12..43 binding: SHA-256 of the whole ClearInit
//	  sig    by the responder, label "skyfleet clear resp v1"
//	  last16 mac
//
//	ClearData (TypeClearData = 6), ClearOverhead bytes more than its plaintext:
//	  0      type = 6
//	  1      epoch, always 0 (a clear session has no keys to rotate)
//	  2..3   reserved, zero
//	  4..7   receiver index
//	  8..15  counter, < 2^60, checked against the replay window
//	  16..   plaintext: kind (1) | payload, as in Data (never padded)
//	  sig    by the sender, label "skyfleet clear data v1" followed by the
//	         binding, so a datagram cannot be moved into another session
//
// The binding, the SHA-256 of the ClearInit, is known to both ends; the
// responder's signature over it is what proves it answered this Init.
const (
	TypeClearInit byte = 4 // clear handshake message 1
	TypeClearResp byte = 5 // clear handshake message 2
	TypeClearData byte = 6 // clear session datagram

	// SigLen is a clear datagram's signature: a compact recoverable ECDSA
	// signature (identity.CompactSignatureSize).
	SigLen = identity.CompactSignatureSize
	// ClearInitLen is a ClearInit with an empty payload.
	ClearInitLen = 8 + 2*KeyLen + 8 + SigLen + MACLen
	// ClearRespLen is the length of a ClearResp.
	ClearRespLen = 12 + sha256.Size + SigLen + MACLen
	// ClearOverhead is what a ClearData adds to its plaintext: the header and
	// the signature.
	ClearOverhead = HeaderLen + SigLen
)

const (
	clearInitLabel = "skyfleet clear init v1"
	clearRespLabel = "skyfleet clear resp v1"
	clearDataLabel = "skyfleet clear data v1"
)

// clearState is what a clear session signs and verifies with.
type clearState struct {
	priv    *secp256k1.PrivateKey
	binding [sha256.Size]byte
}

// clearDigest is SHA-256 of label, binding (nil for the handshake) and msg.
func clearDigest(label string, binding []byte, msg []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(binding)
	h.Write(msg)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// clearSign appends the signature of priv over label, binding and msg to msg.
func clearSign(priv *secp256k1.PrivateKey, label string, binding, msg []byte) ([]byte, error) {
	d := clearDigest(label, binding, msg)
	sig, err := identity.SignCompact(priv, d[:]) // constant time in the key
	if err != nil {
		return nil, err
	}
	return append(msg, sig...), nil
}

// clearVerify reports whether signed ends with a signature by the key pub
// (33 bytes, compressed) over label, binding and the bytes before it.
func clearVerify(pub []byte, label string, binding, signed []byte) bool {
	if len(signed) < SigLen {
		return false
	}
	n := len(signed) - SigLen
	d := clearDigest(label, binding, signed[:n])
	got, compressed, err := ecdsa.RecoverCompact(signed[n:], d[:])
	return err == nil && compressed && bytes.Equal(got.SerializeCompressed(), pub)
}

// InitiateClear is Initiate for a clear link: it builds a ClearInit to the node
// with static key remote, in clear and signed. Errors: ErrKey, ErrTooLarge, or
// the node key cannot sign. Pending.Finish takes the ClearResp.
func (h *Handshaker) InitiateClear(remote []byte, localIndex uint32, ts uint64, payload []byte) ([]byte, *Pending, error) {
	if !validKey(remote) {
		return nil, nil, ErrKey
	}
	if len(payload) > MaxInitPayload {
		return nil, nil, ErrTooLarge
	}
	msg := make([]byte, 8, ClearInitLen+len(payload))
	msg[0] = TypeClearInit
	binary.BigEndian.PutUint32(msg[4:8], localIndex)
	msg = append(msg, h.static.Public...)
	msg = append(msg, remote...)
	msg = binary.BigEndian.AppendUint64(msg, ts)
	msg = append(msg, payload...)
	msg, err := clearSign(h.priv, clearInitLabel, nil, msg)
	if err != nil {
		return nil, nil, fmt.Errorf("link: signing the clear init: %w", err)
	}
	mac := h.mac(msg)
	msg = append(msg, mac[:]...)
	p := &Pending{h: h, localIndex: localIndex, clear: true}
	copy(p.remote[:], remote)
	p.binding = sha256.Sum256(msg)
	return msg, p, nil
}

// respondClear is Respond for a ClearInit: the same checks in the same order
// (length, type, mac, exact replay, then the signature instead of Noise, the
// responder key, accept, the timestamp), and a ClearResp for an answer.
func (h *Handshaker) respondClear(msg []byte, localIndex uint32, now time.Time, accept func(remote []byte) bool) ([]byte, *Session, []byte, error) {
	id, err := h.checkInit(msg, TypeClearInit, ClearInitLen)
	if err != nil {
		return nil, nil, nil, err
	}
	remote := msg[8 : 8+KeyLen]
	if !bytes.Equal(msg[8+KeyLen:8+2*KeyLen], h.static.Public) {
		return nil, nil, nil, ErrRefused // for another node (a broadcast channel hears all)
	}
	if !validKey(remote) || !clearVerify(remote, clearInitLabel, nil, msg[:len(msg)-MACLen]) {
		return nil, nil, nil, ErrAuth
	}
	if accept != nil && !accept(append([]byte(nil), remote...)) {
		return nil, nil, nil, ErrRefused
	}
	var rk [KeyLen]byte
	copy(rk[:], remote)
	ts := binary.BigEndian.Uint64(msg[8+2*KeyLen:])
	payload := msg[8+2*KeyLen+8 : len(msg)-MACLen-SigLen]

	if err := h.admitInit(id, rk, ts); err != nil {
		return nil, nil, nil, err
	}

	binding := sha256.Sum256(msg)
	remoteIndex := binary.BigEndian.Uint32(msg[4:8])
	resp := make([]byte, 12, ClearRespLen)
	resp[0] = TypeClearResp
	binary.BigEndian.PutUint32(resp[4:8], localIndex)
	binary.BigEndian.PutUint32(resp[8:12], remoteIndex)
	resp = append(resp, binding[:]...)
	resp, err = clearSign(h.priv, clearRespLabel, nil, resp)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("link: signing the clear resp: %w", err)
	}
	mac := h.mac(resp)
	resp = append(resp, mac[:]...)
	s := newClearSession(h, false, rk, localIndex, remoteIndex, binding, now)
	return resp, s, append([]byte(nil), payload...), nil
}

// finishClear is Finish for a ClearResp to a ClearInit.
func (p *Pending) finishClear(resp []byte, now time.Time) (*Session, error) {
	if len(resp) != ClearRespLen {
		return nil, ErrShort
	}
	if resp[1]|resp[2]|resp[3] != 0 {
		return nil, ErrType
	}
	if binary.BigEndian.Uint32(resp[8:12]) != p.localIndex {
		return nil, ErrIndex
	}
	if !p.h.checkMAC(resp) {
		return nil, ErrMAC
	}
	if !bytes.Equal(resp[12:12+sha256.Size], p.binding[:]) ||
		!clearVerify(p.remote[:], clearRespLabel, nil, resp[:len(resp)-MACLen]) {
		return nil, ErrAuth
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil, ErrReplay
	}
	p.done = true
	return newClearSession(p.h, true, p.remote, p.localIndex, binary.BigEndian.Uint32(resp[4:8]), p.binding, now), nil
}

// newClearSession builds a clear session: one epoch, no keys, never padded.
func newClearSession(h *Handshaker, initiator bool, remote [KeyLen]byte, localIndex, remoteIndex uint32, binding [sha256.Size]byte, now time.Time) *Session {
	s := &Session{
		remote:      remote,
		localIndex:  localIndex,
		remoteIndex: remoteIndex,
		initiator:   initiator,
		rand:        h.rng(),
		established: now,
		clear:       &clearState{priv: h.priv, binding: binding},
	}
	kp := &keypair{created: now}
	kp.firstRecv.Store(now.UnixNano() | 1) // nothing to confirm: there is no rekey
	s.keys.Store(&keyset{cur: kp})
	return s
}

// sealClear appends a ClearData carrying kind and payload to dst.
func (s *Session) sealClear(dst []byte, kp *keypair, kind byte, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return nil, ErrTooLarge
	}
	ctr, err := kp.nextCounter()
	if err != nil {
		return nil, err
	}
	n := HeaderLen + 1 + len(payload)
	out, d := sliceForAppend(dst, n)
	copy(d[HeaderLen+1:], payload) // first, as in seal: payload may overlap d
	d[0], d[1], d[2], d[3] = TypeClearData, 0, 0, 0
	binary.BigEndian.PutUint32(d[4:8], s.remoteIndex)
	binary.BigEndian.PutUint64(d[8:16], ctr)
	d[HeaderLen] = kind
	start := len(out) - n
	signed, err := clearSign(s.clear.priv, clearDataLabel, s.clear.binding[:], out[start:])
	if err != nil {
		return nil, err
	}
	out = append(out[:start], signed...)
	s.txPackets.Add(1)
	s.txBytes.Add(uint64(len(signed)))
	return out, nil
}

// openClear is Open for a ClearData: the replay window first, then the
// signature, then the window again, as for Data.
func (s *Session) openClear(dst, datagram []byte, now time.Time) ([]byte, []byte, error) {
	if len(datagram) < ClearOverhead+1 {
		return nil, nil, ErrShort
	}
	if datagram[0] != TypeClearData || datagram[1]|datagram[2]|datagram[3] != 0 {
		return nil, nil, ErrType
	}
	kp := s.keys.Load().cur
	ctr, err := s.fresh(kp, datagram)
	if err != nil {
		return nil, nil, err
	}
	if !clearVerify(s.remote[:], clearDataLabel, s.clear.binding[:], datagram) {
		s.authFailures.Add(1)
		return nil, nil, ErrAuth
	}
	if _, ok := s.received(kp, ctr, len(datagram), now); !ok {
		return nil, nil, ErrReplay
	}
	pt := datagram[HeaderLen : len(datagram)-SigLen]
	if pt[0] != KindPayload {
		return nil, nil, nil // no control messages in a clear session; reserved kinds are ignored
	}
	return append(dst, pt[1:]...), nil, nil
}

// Clear reports whether the session is a clear one (InitiateClear): its
// datagrams are signed, not encrypted.
func (s *Session) Clear() bool { return s.clear != nil }

// PayloadCapacity returns the largest payload whose datagram is at most mtu
// bytes in this session: PayloadCapacity(mtu, padding) for an encrypted one,
// mtu - ClearOverhead - 1 for a clear one; -1 when nothing fits.
func (s *Session) PayloadCapacity(mtu int) int {
	if s.clear != nil {
		return min(max(mtu-ClearOverhead-1, -1), MaxPayload)
	}
	return PayloadCapacity(mtu, s.padding)
}
