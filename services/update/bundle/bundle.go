// Package bundle is the Skyfleet update bundle (a .sfu file): one A/B slot's boot
// files and a manifest signed by a release key, and the verification a device
// runs before it writes anything. The host tools (skyfleet update build, verify)
// and the device's updater use this package alone: the device never links the
// image builder.
//
// # Format
//
// All integers are big endian.
//
//	magic      8   "SKYFLUPD"
//	length     4   manifest length, 1..MaxManifest
//	manifest       canonical encoding, below
//	signature  65  identity.SignCompact (ECDSA, RFC 6979 nonce, recoverable)
//	               over SHA-256(SigDomain ‖ magic ‖ length ‖ manifest)
//	files          each file's bytes in manifest order, exactly its size;
//	               nothing follows the last
//
// The manifest:
//
//	format     1   FormatVersion
//	board      1+n the board profile (board.Names), 1..32 of [a-z0-9-]
//	version    1+n the release's version (ParseVersion)
//	minimum    1+n the lowest running version it may update, "" for any
//	created    8   Unix seconds when it was built (shown, not checked)
//	key        33  the release key that signed it, compressed
//	count      2   number of files, 1..MaxFiles
//	per file:  name 1+n (slot-relative, slash-separated; ValidName), size 8
//	           (at most MaxFileSize), SHA-256 32; names strictly increasing
//
// There is exactly one encoding of a manifest (Marshal of Unmarshal gives the
// input back), the signature covers all of it, and a reader checks the signature
// before it returns any file: a device refuses a bad bundle before it writes a
// byte into its inactive slot. Each file is then hashed as it is read and its
// last Read fails unless the digest matches (ErrDigest), so the writer of a slot
// keeps a file only once its reader ended cleanly.
//
// A file named cmdline.<slot>.txt (cmdline.a.txt, cmdline.b.txt) holds the kernel
// command line for that slot, which names it; the updater installs the one for the
// slot it writes as cmdline.txt.
package bundle

import (
	"errors"
)

// Format constants.
const (
	// Magic starts every bundle.
	Magic = "SKYFLUPD"
	// FormatVersion is the manifest format this package writes and reads.
	FormatVersion = 1
	// SigDomain separates bundle signatures from every other use of a key.
	SigDomain = "skyfleet update bundle v1\x00"
	// SignatureLen is the length of the compact recoverable signature.
	SignatureLen = 65
	// KeyLen is the length of a compressed secp256k1 public key.
	KeyLen = 33
)

// Limits. A slot holds about 60 MiB (images/card); the limits leave room and
// bound what a reader of outside bytes allocates: the manifest is read whole,
// the files only streamed.
const (
	// MaxManifest is the largest manifest in bytes.
	MaxManifest = 64 << 10
	// MaxFiles is the most files a bundle holds.
	MaxFiles = 1024
	// MaxName is the longest file name in bytes.
	MaxName = 128
	// MaxFileSize is the largest file in bytes.
	MaxFileSize = 256 << 20
	// MaxTotal is the most file bytes a bundle holds altogether.
	MaxTotal = 512 << 20
	// maxField is the longest board, version or minimum string.
	maxField = 32
)

// Errors, wrapped with the details. None carries key material.
var (
	// ErrFormat: not a bundle, or not in the one canonical encoding.
	ErrFormat = errors.New("bundle: malformed")
	// ErrSignature: the signature does not verify for the key the manifest names.
	ErrSignature = errors.New("bundle: bad signature")
	// ErrKey: signed by a key that is not among the accepted release keys, or
	// no release key is configured.
	ErrKey = errors.New("bundle: release key not accepted")
	// ErrBoard: built for another board.
	ErrBoard = errors.New("bundle: wrong board")
	// ErrVersion: the running version is below the bundle's minimum, or the
	// bundle is older than what runs (a downgrade).
	ErrVersion = errors.New("bundle: version not accepted")
	// ErrDigest: a file's content does not match its SHA-256 in the manifest.
	ErrDigest = errors.New("bundle: file content does not match the manifest")
	// ErrTruncated: the stream ended before the last byte of the last file.
	ErrTruncated = errors.New("bundle: truncated")
)
