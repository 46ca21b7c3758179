package skycoin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/skyfleet/skyfleet/services/identity"
)

// Skycoin's message signing is its hardware wallet's (skycoin/hardware-wallet,
// tiny-firmware/firmware/fsm_skycoin_impl.c, msgSkycoinSignMessageImpl and
// msgSkycoinCheckMessageSignatureImpl): the Skycoin library itself
// (skycoin/skycoin) signs only hashes (cipher.SignHash) and defines no
// message format. The firmware signs
//
//	digest = SHA-256(message)                  for ordinary text
//	digest = the 32 bytes the text spells      for 64 hex digits
//
// with a Skycoin signature (r ‖ s ‖ recovery id, the id last, s low) and
// answers with it as 130 lowercase hex digits; older firmware answered in
// base58 (its CHANGELOG, under Unreleased: "encode signature in hex
// format"; hardware-wallet-go's README still shows a base58 one). The message
// is a protobuf string the firmware reads as a C string, so it ends at the
// first NUL byte.

// MaxMessageSize bounds a message SignMessage signs, in bytes. The wallet
// shows the whole message before it signs, and 4 KiB is a few screens of
// text: more is not something a person reads on a small display before
// pressing "sign". Skycoin's firmware takes at most 130 bytes
// (hardware-wallet-protob messages.options, SkycoinSignMessage.message
// max_size:131 with the NUL), so only a message of that size or less can
// also be signed there.
const MaxMessageSize = 4096

// sigHashPreimageSize is the length of what a transaction input's
// signature hashes: the inner hash and the input's UxID (Transaction.SigHash).
const sigHashPreimageSize = 32 + 32

// MessageSignatureSize is the length of a message signature in bytes (the
// Skycoin signature r ‖ s ‖ recovery id); its hex form is twice as long.
const MessageSignatureSize = sigSize

var (
	// ErrMessageRefused wraps every reason SignMessage refuses a message.
	ErrMessageRefused = errors.New("skycoin: message refused")
	// ErrMessageSignature wraps every reason VerifyMessage rejects a
	// signature.
	ErrMessageSignature = errors.New("skycoin: message signature does not verify")
)

// IsDigestMessage says whether msg is exactly 64 hex digits (either case),
// which Skycoin's firmware does not hash but signs as the 32-byte digest
// they spell (skycoin-api/check_digest.c, is_sha256_digest_hex).
func IsDigestMessage(msg []byte) bool {
	if len(msg) != 2*sha256.Size {
		return false
	}
	for _, c := range msg {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// MessageDigest is the hash a Skycoin message signature signs: SHA-256 of
// msg, or for a message of 64 hex digits (IsDigestMessage) the 32 bytes
// they spell, as Skycoin's firmware computes it.
func MessageDigest(msg []byte) [32]byte {
	if IsDigestMessage(msg) {
		var d [32]byte
		hex.Decode(d[:], msg) // cannot fail: checked above
		return d
	}
	return sha256.Sum256(msg)
}

// MessagePrintable says whether the screen can show msg as it is: valid
// UTF-8 whose every character is a line feed or a graphic character
// (Unicode letters, marks, numbers, punctuation, symbols and spaces: no
// other control or format character, so no tab, carriage return, escape
// sequence, zero-width or bidirectional control that would make the text
// read differently from its bytes). It says nothing of characters that
// look alike. Skycoin's firmware signs any message without showing it;
// this wallet's approval screen shows the message, and should not sign
// one it cannot show.
func MessagePrintable(msg []byte) bool {
	for len(msg) > 0 {
		r, n := utf8.DecodeRune(msg)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		if r != '\n' && !unicode.IsGraphic(r) {
			return false
		}
		msg = msg[n:]
	}
	return true
}

// SignMessage signs msg with key as Skycoin's firmware does (see
// MessageDigest) and returns the signature as it does: 130 lowercase hex
// digits of r ‖ s ‖ recovery id. identity.SignCompact makes the signature,
// constant time in the key, deterministic (RFC 6979) and low-S, which
// every Skycoin verifier accepts.
//
// It refuses, with an error wrapping ErrMessageRefused:
//   - a message longer than MaxMessageSize;
//   - a message holding a NUL byte: Skycoin's firmware reads a message up
//     to its first NUL, so its verifier would check a different text;
//   - a message of 64 hex digits (IsDigestMessage), which Skycoin's
//     firmware signs as a raw digest: whoever sends it chooses the hash
//     signed, and a transaction input's SigHash is such a hash, so a
//     signed "message" would spend coins that no transaction approval
//     showed (hardware-wallet-go's own integration tests sign
//     transactions' SigHashes through this path);
//   - any other message of 64 bytes: a SigHash is SHA-256 of 64 bytes,
//     inner hash ‖ UxID, so the signature of such a message could be a
//     transaction input's. The computer need only send, as the message,
//     the inner hash of a transaction of its making and the UxID of an
//     output the wallet holds; only the screen would show the bytes are
//     not text, and a computer that paid the wallet that output could
//     grind its UxID and the inner hash until they read as text. Skycoin
//     signs no other hash with a wallet's keys, so a message of any other
//     length is never taken for a transaction.
//
// Other errors are identity.SignCompact's for a nil or zero key; no error
// carries the key.
func SignMessage(key *secp256k1.PrivateKey, msg []byte) (string, error) {
	if len(msg) > MaxMessageSize {
		return "", fmt.Errorf("%w: %d bytes, more than %d", ErrMessageRefused, len(msg), MaxMessageSize)
	}
	if i := bytes.IndexByte(msg, 0); i >= 0 {
		return "", fmt.Errorf("%w: a NUL byte at %d; Skycoin's firmware signs and verifies text only up to the first NUL", ErrMessageRefused, i)
	}
	if IsDigestMessage(msg) {
		return "", fmt.Errorf("%w: 64 hex digits, which Skycoin signs as a raw hash, not as text: a hash chosen by the computer could be a transaction's", ErrMessageRefused)
	}
	if len(msg) == sigHashPreimageSize {
		return "", fmt.Errorf("%w: %d bytes, the length of what a transaction input's signature hashes (inner hash and UxID): add or remove a character", ErrMessageRefused, sigHashPreimageSize)
	}
	d := sha256.Sum256(msg)
	c, err := identity.SignCompact(key, d[:])
	if err != nil {
		return "", err
	}
	var sig [sigSize]byte
	copy(sig[:64], c[1:])
	sig[64] = c[0] - 27 - 4
	return hex.EncodeToString(sig[:]), nil
}

// parseMessageSignature reads a signature as Skycoin's firmware writes it:
// 130 hex digits (either case), or the base58 its older versions wrote.
func parseMessageSignature(s string) ([sigSize]byte, error) {
	var sig [sigSize]byte
	if len(s) == 2*sigSize {
		if _, err := hex.Decode(sig[:], []byte(s)); err == nil {
			return sig, nil
		}
	}
	if b := base58.Decode(s); len(b) == sigSize {
		copy(sig[:], b)
		return sig, nil
	}
	return sig, fmt.Errorf("%w: not %d bytes in hex or base58", ErrMessageSignature, sigSize)
}

// VerifyMessage checks that sig is addr's signature of msg, by Skycoin's
// rule: sig (130 hex digits, or the base58 of older firmware) signs
// MessageDigest(msg), and the public key it recovers has address addr
// (skycoin/skycoin cipher.VerifyAddressSignedHash with secp256k1-go's
// VerifySignature checks: recovery id below 4, s's top bit clear; and the
// firmware's msgSkycoinCheckMessageSignatureImpl). A message of 64 hex
// digits is checked as the digest it spells, as Skycoin's firmware does.
// Errors wrap ErrMessageSignature and say what failed; a message holding a
// NUL byte is rejected (no Skycoin signer signs past one).
func VerifyMessage(addr identity.Address, msg []byte, sig string) error {
	if i := bytes.IndexByte(msg, 0); i >= 0 {
		return fmt.Errorf("%w: the message holds a NUL byte at %d, which Skycoin's firmware never signs", ErrMessageSignature, i)
	}
	s, err := parseMessageSignature(sig)
	if err != nil {
		return err
	}
	if s[64] > 3 {
		return fmt.Errorf("%w: recovery id %d", ErrMessageSignature, s[64])
	}
	if s[32]&0x80 != 0 {
		return fmt.Errorf("%w: s has its top bit set (Skycoin refuses such malleable signatures)", ErrMessageSignature)
	}
	d := MessageDigest(msg)
	c := make([]byte, 65)
	c[0] = 27 + 4 + s[64]
	copy(c[1:], s[:64])
	pub, _, err := ecdsa.RecoverCompact(c, d[:])
	if err != nil {
		return fmt.Errorf("%w: no public key recovers: %v", ErrMessageSignature, err)
	}
	got, err := identity.AddressFromPublicKey(pub.SerializeCompressed())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMessageSignature, err)
	}
	if got != addr {
		return fmt.Errorf("%w: signed by %s, not %s", ErrMessageSignature, got, addr)
	}
	return nil
}
