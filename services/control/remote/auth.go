// Package remote is the node's remote shell: an SSH server that only the fleet
// master can log into, and the master's client for it.
//
// SSH has no secp256k1 key type, and the node knows nothing about its master but
// the master's compressed secp256k1 public key. So the master authenticates with a
// challenge-response carried over SSH keyboard-interactive: the server asks one
// question, ChallengePrefix followed by the hex SSH session ID, and the client
// answers with the hex of a compact ECDSA signature (SignChallenge) over the user
// name and that session ID. Binding the signature to the session ID means an
// answer cannot be replayed on another connection. Every other SSH
// authentication method is refused.
//
// The host key is an ed25519 key derived from the node's own secp256k1 key
// (HostSigner), so it is stable across reboots without storing anything.
package remote

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/hkdf"
	"golang.org/x/crypto/ssh"

	"github.com/skyfleet/skyfleet/services/identity"
)

// ChallengePrefix starts the single keyboard-interactive question the server
// asks; the hex-encoded SSH session ID follows it.
const ChallengePrefix = "skyfleet-master-signature v1 "

// ErrNotMaster is returned (wrapped) by VerifyChallenge when a signature is
// malformed or was not made by the master key.
var ErrNotMaster = errors.New("remote: signature is not from the master key")

// challengeHash is the 32-byte digest the master signs. The domain prefix keeps
// it from ever colliding with a digest signed for another purpose with the same
// key (reports, mesh handshakes).
func challengeHash(user string, sessionID []byte) []byte {
	h := sha256.New()
	h.Write([]byte("skyfleet ssh auth v1\x00"))
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write(sessionID)
	return h.Sum(nil)
}

// SignChallenge returns the 65-byte compact ECDSA signature (recoverable,
// compressed-key flag set) with which master proves it is logging in as user on
// the SSH session sessionID. The keyboard-interactive answer is its hex. It is
// computed in constant time (identity.SignCompact); a nil or zero master key
// gives nil, which VerifyChallenge rejects.
func SignChallenge(master *secp256k1.PrivateKey, user string, sessionID []byte) []byte {
	sig, _ := identity.SignCompact(master, challengeHash(user, sessionID))
	return sig
}

// VerifyChallenge checks that sig is a SignChallenge signature for user and
// sessionID made by the key whose serialized public key (33-byte compressed,
// or 65-byte uncompressed) is master. It returns an error wrapping ErrNotMaster
// if sig is malformed or from another key, or a plain error if master itself
// does not parse or user contains a NUL (which would make the signed message
// ambiguous).
func VerifyChallenge(master []byte, user string, sessionID, sig []byte) error {
	if strings.ContainsRune(user, 0) {
		return errors.New("remote: user name contains NUL")
	}
	return verifySigner(master, "master", challengeHash(user, sessionID), sig, ErrNotMaster)
}

// verifySigner checks that the compact signature sig over hash was made by
// pub (a serialized public key, the role's); a malformed signature or another
// signer gives an error wrapping wrong.
func verifySigner(pub []byte, role string, hash, sig []byte, wrong error) error {
	want, err := secp256k1.ParsePubKey(pub)
	if err != nil {
		return fmt.Errorf("remote: bad %s key: %w", role, err)
	}
	got, _, err := ecdsa.RecoverCompact(sig, hash)
	if err != nil {
		return fmt.Errorf("%w: %v", wrong, err)
	}
	if !got.IsEqual(want) {
		return wrong
	}
	return nil
}

// NodeProofRequest is the SSH global request (RFC 4254 §4) with which a client
// asks the node to prove that it holds the secp256k1 node key it expects. The
// reply's payload is SignNodeProof's 65-byte signature. The master's tunnel is
// plain TCP from the operator's CLI to the master; this check makes the SSH
// session end to end with the node, whoever relays it.
const NodeProofRequest = "node-key-proof@skyfleet"

// ErrNotNode is returned (wrapped) by VerifyNodeProof when a proof is malformed
// or was not made by the expected node key.
var ErrNotNode = errors.New("remote: the server does not hold the node's key")

// nodeProofHash is the digest the node signs: its SSH host key (wire format,
// RFC 4253 §6.6) bound to the session ID, under its own domain prefix. The
// session ID goes in as an SSH string (length first) so that no other split of
// the same bytes between the two gives the same digest.
func nodeProofHash(sessionID, hostKey []byte) []byte {
	h := sha256.New()
	h.Write([]byte("skyfleet ssh node proof v1\x00"))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(sessionID))))
	h.Write(sessionID)
	h.Write(hostKey)
	return h.Sum(nil)
}

// SignNodeProof returns the node's answer to NodeProofRequest: a 65-byte compact
// ECDSA signature by the node key over the session ID and the host key (wire
// format) the session was keyed with. A server relaying another node's session
// cannot produce it, since its own session ID differs. It is computed in
// constant time (identity.SignCompact); a nil or zero node key gives nil, which
// VerifyNodeProof rejects.
func SignNodeProof(node *secp256k1.PrivateKey, sessionID, hostKey []byte) []byte {
	sig, _ := identity.SignCompact(node, nodeProofHash(sessionID, hostKey))
	return sig
}

// VerifyNodeProof checks a SignNodeProof signature against node, the expected
// 33-byte compressed public key. Errors wrap ErrNotNode for a malformed proof or
// one by another key; a node key that does not parse is a plain error.
func VerifyNodeProof(node []byte, sessionID, hostKey, sig []byte) error {
	return verifySigner(node, "node", nodeProofHash(sessionID, hostKey), sig, ErrNotNode)
}

// HostSigner returns the node's SSH host key: an ed25519 key whose seed is
// HKDF-SHA256 of the node's secp256k1 private key (no salt, info "skyfleet ssh
// host key v1"). The same node key always gives the same host key, and the host
// key reveals nothing about the node key.
func HostSigner(node *secp256k1.PrivateKey) (ssh.Signer, error) {
	if node == nil {
		return nil, errors.New("remote: no node key")
	}
	seed := make([]byte, ed25519.SeedSize)
	kdf := hkdf.New(sha256.New, node.Serialize(), nil, []byte("skyfleet ssh host key v1"))
	if _, err := io.ReadFull(kdf, seed); err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(seed))
}
