package master

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/services/identity"
)

// The master's API off loopback is served over TLS 1.3 with a P-256 key derived
// from the master key, so the operator's CLI can pin it without a CA: whoever
// holds master.key computes the pin itself (TLSPin), everyone else is given it
// (`skyfleet master` prints it as tls_pin, GET /api/status shows it). The
// certificate is self-signed and made afresh at each start; only its public key
// is pinned.

// tlsKeyInfo is the HKDF info string of the TLS key; the counter after it
// changes only in the 2^-32 case of a draw above the P-256 order.
const tlsKeyInfo = "skyfleet master TLS key v1 P-256 "

// PinSize is the length of a TLS pin in bytes: SHA-256 of the certificate's
// SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), written as 64 hex characters.
const PinSize = sha256.Size

// tlsKey derives the master's TLS key: HKDF-SHA256 (RFC 5869) over the master
// key's 32-byte secret with tlsKeyInfo, read as a P-256 scalar (SEC 1 §2.3.6).
// The TLS key reveals nothing of the master key (HKDF is one-way), and the same
// master key always gives the same TLS key, on the master and in the CLI.
func tlsKey(k *identity.Key) (*ecdsa.PrivateKey, error) {
	secret := k.PrivateKey().Serialize()
	defer clear(secret)
	for i := range 8 {
		b, err := hkdf.Key(sha256.New, secret, nil, fmt.Sprintf("%s%d", tlsKeyInfo, i), 32)
		if err != nil {
			return nil, err
		}
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b)
		clear(b)
		if err == nil {
			return priv, nil
		}
	}
	return nil, errors.New("master: no valid TLS key derived from the master key")
}

// TLSPin returns the pin of the TLS key a master with master key k serves:
// 64 lower-case hex characters (PinSize bytes). Errors: only a broken key.
func TLSPin(k *identity.Key) (string, error) {
	priv, err := tlsKey(k)
	if err != nil {
		return "", err
	}
	return pinOf(&priv.PublicKey)
}

// pinOf is the hex SHA-256 of pub's SubjectPublicKeyInfo DER.
func pinOf(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// ParsePin checks a pin as an operator types it: 64 hex characters, either
// case, optionally after "sha256:". It returns the lower-case form.
func ParsePin(s string) (string, error) {
	s = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "sha256:"))
	if b, err := hex.DecodeString(s); err != nil || len(b) != PinSize {
		return "", fmt.Errorf("a TLS pin is %d hex characters (tls_pin from `skyfleet master`), not %q", 2*PinSize, printable(s))
	}
	return s, nil
}

// tlsConfig is the master's server side: TLS 1.3 only, one self-signed
// certificate over the derived key, valid from an hour ago for ten years (the
// CLI checks the key, not the dates; a browser warns either way). It returns
// the config and the key's pin.
func tlsConfig(k *identity.Key) (*tls.Config, string, error) {
	priv, err := tlsKey(k)
	if err != nil {
		return nil, "", err
	}
	pin, err := pinOf(&priv.PublicKey)
	if err != nil {
		return nil, "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "skyfleet master " + k.Address().String()},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, "", err
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
	}
	return cfg, pin, nil
}

// PinError is a TLS handshake with a master whose key does not match the pin:
// either the pin is stale (another master key) or something between the CLI and
// the master answered in its place.
type PinError struct {
	Addr string
	// Want is the pin the CLI holds; Got the one the server presented.
	Want, Got string
}

func (e *PinError) Error() string {
	return fmt.Sprintf("master at %s presents TLS key %s, not the pinned %s: refusing it (a man in the middle, or a master with another key: check tls_pin where `skyfleet master` runs)", e.Addr, e.Got, e.Want)
}

// clientTLS is the CLI's side: TLS 1.3, no CA and no name check, only the
// server's key against pin. A server without a certificate or with another key
// fails the handshake with a *PinError.
func clientTLS(addr, pin string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain is not checked against a CA (there is none): the pin in
		// VerifyConnection is the whole check.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("master at %s sent no TLS certificate", addr)
			}
			got, err := pinOf(cs.PeerCertificates[0].PublicKey)
			if err != nil {
				return fmt.Errorf("master at %s: its TLS key: %w", addr, err)
			}
			if got != pin {
				return &PinError{Addr: addr, Want: pin, Got: got}
			}
			return nil
		},
	}
}
