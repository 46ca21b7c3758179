// Package link is the link layer of the Skyfleet mesh: the Noise handshake between
// two nodes and the encrypted session that follows it (docs/architecture.md §Links).
//
// The package is pure: it opens no sockets, starts no goroutines and owns no timers.
// Callers pass the current time (now) and drive periodic work through Session.Tick,
// which is what makes it testable with a fake clock and reusable over any transport.
// The same Session type serves a neighbour link (one hop) and an end-to-end session
// between two nodes carried over a source route.
//
// # Handshake
//
// Noise_IKpsk2_secp256k1_ChaChaPoly_SHA256 (Noise rev 34 §7.5 "IK", §9 "psk2"),
// implemented with github.com/flynn/noise and a secp256k1 DH function:
//
//   - public keys are 33-byte compressed points (DHLEN 33, the length that appears in
//     handshake messages);
//   - DH(priv, pub) = SHA-256 of the 33-byte compressed encoding of priv·pub, the same
//     value libsecp256k1's secp256k1_ecdh computes with its default hash, so another
//     implementation can interoperate;
//   - the psk is the 32-byte network key. In IKpsk2 the psk enters Noise only in the
//     second message, so the first message is guarded by a MAC under a psk-derived key
//     (below): a node without the network key gets no answer and costs no ECDH.
//
// The Noise prologue is "skyfleet link v1" followed by the first 8 bytes of the Init
// (type, reserved, sender index), so tampering with the Init header breaks the
// handshake instead of silently redirecting the session.
//
// # Wire formats
//
// All integers are big endian. "mac" is the first 16 bytes of HMAC-SHA256 under
// macKey = HKDF-SHA256(ikm = psk, salt = none, info = "skyfleet mac1"), computed over
// every byte before the mac.
//
//	Init (TypeInit = 1), InitLen + len(payload) bytes, 130..642:
//	  0      type = 1
//	  1..3   reserved, zero
//	  4..7   sender index: the initiator's receiver index for the new session
//	  8..    Noise message 1: e (33) | enc(s) (33+16) | enc(timestamp (8) | payload) (+16)
//	  last16 mac
//
//	Resp (TypeResp = 2), RespLen = 77 bytes:
//	  0      type = 2
//	  1..3   reserved, zero
//	  4..7   sender index: the responder's receiver index
//	  8..11  receiver index: the initiator's sender index from the Init
//	  12..60 Noise message 2: e (33) | enc(empty) (16)
//	  last16 mac
//
//	Data (TypeData = 3), Overhead = 32 bytes more than its plaintext:
//	  0      type = 3
//	  1      epoch: low 8 bits of the key epoch the datagram is sealed under
//	  2..3   reserved, zero
//	  4..7   receiver index
//	  8..15  counter, per epoch and direction, < 2^60
//	  16..   ChaCha20-Poly1305(key of the epoch and direction,
//	         nonce = bytes 4..15, ad = bytes 0..15, plaintext) with its 16-byte tag
//
// The Data nonce is the receiver index followed by the counter. The index is constant
// for a key, so the nonce is unique exactly when the counter is; taking it from the
// header lets Seal and Open run without building a nonce on the heap.
//
// A Data plaintext is
//
//	kind (1) | payload                                        (Config.Padding == 0)
//	kind|0x80 (1) | payload length (2) | payload | zeros      (Config.Padding > 0)
//
// where the zeros make the ciphertext (plaintext + 16-byte tag) a multiple of
// Config.Padding bytes. The 0x80 bit marks the padded layout so that the receiver
// never needs to know the sender's Padding. Kinds (low 7 bits): 0 caller payload,
// 1 rekey init, 2 rekey ack, 3 rekey confirm; other kinds are reserved and ignored on
// receipt, so a newer peer can add control messages without breaking an older one.
//
//	rekey init (initiator → responder): new epoch (8) | fresh ephemeral public key (33)
//	rekey ack  (responder → initiator): new epoch (8) | fresh ephemeral public key (33)
//	rekey confirm (both ways): empty
//
// # Clear links
//
// On an amateur-radio channel nothing may be encrypted (47 CFR 97.113(a)(4)), so a
// link there is a clear one (clear.go has every byte): ClearInit, ClearResp and
// ClearData carry everything in clear, each signed with its sender's node key
// (identity.SignCompact, constant time in the key), data bound to its handshake
// and numbered against the same replay window; the network key still keys the
// mac of the two handshake messages. A clear session has one epoch and never
// rekeys. Table.Receive takes only the encrypted types and Table.ReceiveClear only
// the clear ones, so the transport a datagram came from decides, and nobody can
// talk a node into clear sessions where it encrypts.
//
// # Keys and rekeying
//
// After the handshake each direction has its own key (Noise Split: initiator→responder
// and responder→initiator), and both sides hold a secret chain key
// chain0 = HKDF-SHA256(ikm = k_i2r‖k_r2i, salt = handshake hash, info = "skyfleet chain0").
// Every epoch n+1 is derived from epoch n's chain and a fresh ephemeral ECDH
// (docs/architecture.md §Links: each new key mixes the previous one into the fresh
// ECDH result):
//
//	chain‖k_i2r‖k_r2i = HKDF-SHA256(ikm = dh, salt = chain_n, info = "skyfleet rekey"‖n+1 (8 bytes))
//
// Only the handshake initiator starts a rekey, so the two sides never race:
//
//  1. initiator, Tick: rekey init (sealed in epoch n), resent until acked;
//  2. responder, Open: derives n+1 and installs it as "next" (it can receive in it at
//     once) but keeps sending in n; replies with the rekey ack sealed in n (a repeated
//     init gets the same ack again);
//  3. initiator, Open of the ack: derives n+1, sends in it from now on, keeps n as
//     retired (receive only), replies with a confirm sealed in n+1, resent by Tick
//     until the responder is heard in n+1;
//  4. responder, Open of anything sealed in n+1: n+1 becomes current, n retired;
//     replies with a confirm sealed in n+1, so the initiator hears the switch even if
//     the responder has no data to send.
//
// The initiator starts the next rekey only once it has heard the responder in the
// current epoch for a while. Each epoch has its own counters and replay window. A
// retired epoch still opens datagrams, for at most RetainRetired and while it is
// among the MaxRetired newest retired ones: over an end-to-end session the rekey
// messages travel ahead of bulk data, which may wait seconds in the routers' buffers
// and arrive several epochs late. See Session.Tick for the schedule and Session.Open
// for the receive side.
package link
