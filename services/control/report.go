// Package control is fleet control (docs/architecture.md §Fleet control): nodes report to their
// master over the mesh with signed reports. This package holds the report's wire
// format (report.go) and both ends of a report stream: the node's Reporter loop and
// the master's Receiver (reporter.go). The master's registry is control/registry,
// the master-key-only SSH server and client control/remote, the dashboard
// control/dashboard, and the master itself services/master.
package control

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/skyfleet/skyfleet/services/identity"
)

// Report is what a node tells its master: who and what it is, how it is linked and
// how its services run.
type Report struct {
	Name          string         `json:"name,omitempty"` // [node] name
	Board         string         `json:"board"`          // rpi3b, rpi4b, rpi5, zero2w, host
	Version       string         `json:"version"`
	Slot          string         `json:"slot,omitempty"` // a or b on a card
	UptimeSeconds float64        `json:"uptime_s"`
	Links         []Link         `json:"links"`
	Services      []ServiceState `json:"services"`
	// Update is the node's A/B update state (its /status "update"); nil on a
	// node without a boot partition.
	Update *UpdateState `json:"update,omitempty"`
}

// UpdateState is a node's update state in a Report: what the master shows and
// a rollout waits on (services/update.Status, less what the master needs not).
type UpdateState struct {
	// OtherVersion is the version in the slot that does not run.
	OtherVersion string `json:"other_slot_version"`
	// Trial is the slot named for a trial boot, "" when none.
	Trial string `json:"trial_slot,omitempty"`
	// Applying is true while a bundle streams in.
	Applying bool `json:"applying,omitempty"`
	// Last is the last update's outcome, nil when there was none.
	Last *UpdateOutcome `json:"last_update,omitempty"`
}

// UpdateOutcome is one update's end: Result is "trial", "committed", "rolled
// back" or "refused", with the bundle's version, the slot it went to and, for a
// rollback or a refusal, why (at most 1 KiB).
type UpdateOutcome struct {
	Result  string    `json:"result"`
	Version string    `json:"version,omitempty"`
	Slot    string    `json:"slot,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// Link is one mesh neighbour in a Report, with its link metrics.
type Link struct {
	Address string  `json:"address"`
	Up      bool    `json:"up"`
	RTTms   float64 `json:"rtt_ms"`
	Loss    float64 `json:"loss"` // 0..1
	TxBps   float64 `json:"tx_bytes_per_s"`
	RxBps   float64 `json:"rx_bytes_per_s"`
}

// ServiceState is one supervised service in a Report.
type ServiceState struct {
	Name     string `json:"name"`
	State    string `json:"state"` // running, backoff, stopped, ...
	Restarts int    `json:"restarts"`
}

// Wire format of a signed report (integers big endian):
//
//	magic "SKYR" (4) | version 1 (1) | node key (33) | master key (33) | seq (8) |
//	body length (4) | body: the Report as JSON | signature (65)
//
// The signature is decred's compact ECDSA signature by the node key over the SHA-256
// of everything before it. Naming the master inside what is signed stops a report
// being replayed to another master; seq (strictly increasing per node, from a clock
// that survives restarts) stops it being replayed to the same one.
const (
	reportMagic   = "SKYR"
	reportVersion = 1
	keyLen        = 33
	sigLen        = 65
	headerLen     = 4 + 1 + keyLen + keyLen + 8 + 4
	// MaxReportBody bounds the JSON body in bytes, so a report fits a few mesh
	// datagrams and a forged length cannot make the master allocate much.
	MaxReportBody = 16 << 10
)

// Errors Open returns (wrapped with detail), for the master's refusal log.
var (
	ErrMalformed    = errors.New("control: malformed report")
	ErrWrongMaster  = errors.New("control: report addressed to another master")
	ErrBadSignature = errors.New("control: report signature does not match its node key")
)

// Signed is an opened, verified report.
type Signed struct {
	Node   [keyLen]byte // the reporting node's public key
	Master [keyLen]byte
	Seq    uint64
	Report Report
}

// Seal encodes r as a report from the node with key priv to the master with
// compressed public key master (33 bytes), numbered seq, and signs it. Errors: a
// master key of the wrong length, a body over MaxReportBody, a nil or zero priv
// (wrapping identity.ErrPrivateKey). Signing is constant time in priv.
func Seal(priv *secp256k1.PrivateKey, master []byte, seq uint64, r Report) ([]byte, error) {
	if len(master) != keyLen {
		return nil, fmt.Errorf("control: master key must be %d bytes, not %d", keyLen, len(master))
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(body) > MaxReportBody {
		return nil, fmt.Errorf("control: report body of %d bytes exceeds %d", len(body), MaxReportBody)
	}
	b := make([]byte, 0, headerLen+len(body)+sigLen)
	b = append(b, reportMagic...)
	b = append(b, reportVersion)
	pub, err := identity.PublicKeyOf(priv) // constant time in the node key
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	b = append(b, pub...)
	b = append(b, master...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	b = append(b, body...)
	h := sha256.Sum256(b)
	sig, err := identity.SignCompact(priv, h[:]) // decred's bytes, in constant time
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	return append(b, sig...), nil
}

// Open checks and decodes a signed report addressed to master (33 bytes): the
// layout, the master key, then the signature against the node key it carries, then
// the JSON body (unknown fields refused). It does not judge seq; the registry does.
func Open(b []byte, master []byte) (*Signed, error) {
	if len(b) < headerLen+sigLen {
		return nil, fmt.Errorf("%w: %d bytes, at least %d", ErrMalformed, len(b), headerLen+sigLen)
	}
	if string(b[:4]) != reportMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	if b[4] != reportVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[4], reportVersion)
	}
	var s Signed
	copy(s.Node[:], b[5:])
	copy(s.Master[:], b[5+keyLen:])
	s.Seq = binary.BigEndian.Uint64(b[5+2*keyLen:])
	n := binary.BigEndian.Uint32(b[headerLen-4:])
	if n > MaxReportBody || int(n) != len(b)-headerLen-sigLen {
		return nil, fmt.Errorf("%w: body length %d in a %d-byte report", ErrMalformed, n, len(b))
	}
	if !bytes.Equal(s.Master[:], master) {
		return nil, ErrWrongMaster
	}
	signed := b[:len(b)-sigLen]
	h := sha256.Sum256(signed)
	pub, _, err := ecdsa.RecoverCompact(b[len(signed):], h[:])
	if err != nil || !bytes.Equal(pub.SerializeCompressed(), s.Node[:]) {
		return nil, ErrBadSignature
	}
	dec := json.NewDecoder(bytes.NewReader(b[headerLen:len(signed)]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s.Report); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the body", ErrMalformed)
	}
	return &s, nil
}
