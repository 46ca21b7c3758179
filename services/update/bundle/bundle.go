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
//	base       1+n for a delta bundle the version it was built against, else ""
//	created    8   Unix seconds when it was built (shown, not checked)
//	key        33  the release key that signed it, compressed
//	count      2   number of files, 1..MaxFiles
//	per file:  name 1+n (slot-relative, slash-separated; ValidName), size 8
//	           (at most MaxFileSize), SHA-256 32, flags 1 (bit 0: not carried,
//	           taken from the running slot; other bits zero); names strictly
//	           increasing
//
// There is exactly one encoding of a manifest (Marshal of Unmarshal gives the
// input back), the signature covers all of it, and a reader checks the signature
// before it returns any file: a device refuses a bad bundle before it writes a
// byte into its inactive slot. Each file is then hashed as it is read and its
// last Read fails unless the digest matches (ErrDigest), so the writer of a slot
// keeps a file only once its reader ended cleanly.
//
// # Delta bundles
//
// Most releases leave most of a slot alone (the kernel is 46 MiB of a 54 MiB
// rpi3b slot). A delta bundle, built against an earlier release's manifest,
// carries only the files that changed; the others are marked as taken from the
// running slot and the stream skips them. Their names, sizes and digests are
// signed like every other file's, so the device copies them from the slot it
// runs and checks each digest: a running slot that does not hold exactly those
// files (another release, a damaged card) refuses the bundle (ErrBase) before
// the inactive slot is touched. A full bundle always works.
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
	FormatVersion = 2
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
	// ErrBase: a delta bundle needs a file of the running slot that is
	// missing or differs (the device runs another release than the delta's
	// base, or no running slot was given); a full bundle is needed.
	ErrBase = errors.New("bundle: the running slot does not hold what this delta bundle needs")
)

// Refused reports whether err is one of the Err* values above: the bundle
// (or the stream carrying it) is at fault, not the device reading it.
func Refused(err error) bool {
	for _, e := range []error{ErrFormat, ErrSignature, ErrKey, ErrBoard, ErrVersion, ErrDigest, ErrTruncated, ErrBase} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
