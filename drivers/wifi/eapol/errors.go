package eapol

import "errors"

// Sentinel errors. Errors returned by the package wrap one of these (test
// with errors.Is) and add only lengths, counts and field names, never key
// bytes, nonces or MICs.
var (
	// ErrShort: the frame or field ends before its declared length.
	ErrShort = errors.New("eapol: frame too short")
	// ErrLength: a length field disagrees with the bytes present.
	ErrLength = errors.New("eapol: length mismatch")
	// ErrNotKey: the EAPOL packet is not an EAPOL-Key frame (type 3), or
	// its protocol version is unknown.
	ErrNotKey = errors.New("eapol: not an EAPOL-Key frame")
	// ErrDescriptor: the key descriptor type is not 2 (RSN).
	ErrDescriptor = errors.New("eapol: key descriptor type is not RSN (2)")
	// ErrUnsupportedVersion: the key descriptor version is one this
	// package does not run (only 2, HMAC-SHA1-128 + AES key wrap, in the
	// handshakes; 2 and 3 for MICs).
	ErrUnsupportedVersion = errors.New("eapol: unsupported key descriptor version")
	// ErrMICFailure: the frame's MIC does not verify. In message 2 of the
	// 4-way handshake, seen by the Authenticator, it almost always means
	// the station was configured with a different passphrase.
	ErrMICFailure = errors.New("eapol: MIC verification failed (wrong passphrase?)")
	// ErrReplay: the key replay counter is not one this side may accept
	// (IEEE 802.11-2020 §12.7.2): old, repeated, or not one we sent.
	ErrReplay = errors.New("eapol: replay counter rejected")
	// ErrUnexpected: a well-formed frame that is not expected in the
	// current state of the handshake.
	ErrUnexpected = errors.New("eapol: unexpected message")
	// ErrNonceMismatch: message 3's ANonce differs from message 1's.
	ErrNonceMismatch = errors.New("eapol: ANonce in message 3 differs from message 1")
	// ErrRSNEMismatch: an RSN element in the handshake differs from the one
	// seen in the beacon or (re)association request: a downgrade attempt or
	// a misconfiguration (IEEE 802.11-2020 §12.7.6.4).
	ErrRSNEMismatch = errors.New("eapol: RSN element mismatch")
	// ErrUnwrap: AES key unwrap failed its integrity check, or the wrapped
	// data has an impossible length.
	ErrUnwrap = errors.New("eapol: key unwrap failed")
	// ErrKeyData: the Key Data field is malformed or lacks a required KDE.
	ErrKeyData = errors.New("eapol: malformed key data")
	// ErrRetriesExhausted: the Authenticator sent a message the maximum
	// number of times without an answer; the caller should deauthenticate.
	ErrRetriesExhausted = errors.New("eapol: retries exhausted")
	// ErrPassphrase: the passphrase is not 8..63 printable ASCII characters
	// (IEEE 802.11-2020 Annex J.4.1).
	ErrPassphrase = errors.New("eapol: passphrase must be 8..63 printable ASCII characters")
	// ErrSSID: the SSID is empty or longer than 32 bytes.
	ErrSSID = errors.New("eapol: SSID must be 1..32 bytes")
	// ErrPSK: a raw PSK is not exactly 64 hexadecimal digits, or a PMK is
	// not 32 bytes.
	ErrPSK = errors.New("eapol: PSK must be 64 hex digits (32 bytes)")
	// ErrConfig: a Supplicant or Authenticator configuration is incomplete.
	ErrConfig = errors.New("eapol: bad configuration")
)
