package skycoin

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/skyfleet/skyfleet/services/identity"
)

// Sizes of the wire forms (Skycoin's encoder: little-endian integers,
// a slice as a uint32 count and its items).
const (
	sigSize    = 65               // r ‖ s ‖ recovery id
	outputSize = 1 + 20 + 8 + 8   // address version, key, coins, hours
	headerSize = 4 + 1 + 32       // length, type, inner hash
	emptySize  = headerSize + 3*4 // and three empty slices
	// MaxTransactionSize is the largest transaction the wallet decodes:
	// Skycoin's default maximum block transactions size (32 KiB) holds one
	// at most this large.
	MaxTransactionSize = 32 * 1024
)

// DropletsPerCoin is how many droplets make one SKY: a transaction counts
// coins in droplets.
const DropletsPerCoin = 1_000_000

// Output is a transaction output (Skycoin's coin.TransactionOutput): coins
// in droplets, and coin hours.
type Output struct {
	Address identity.Address
	Coins   uint64
	Hours   uint64
}

// Transaction is a Skycoin transaction (coin.Transaction): the signatures,
// one per input, sign SHA-256(inner hash ‖ input), and the inner hash is
// SHA-256 of the encoded inputs and outputs.
type Transaction struct {
	Type byte
	Sigs [][sigSize]byte
	In   [][32]byte // the IDs of the unspent outputs spent (UxIDs)
	Out  []Output
}

// Errors of DecodeTransaction, wrapped with the detail.
var ErrMalformed = errors.New("skycoin: malformed transaction")

// appendOutputs appends the encoded inputs and outputs: what the inner hash
// covers.
func (t *Transaction) appendBody(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.In)))
	for _, in := range t.In {
		b = append(b, in[:]...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Out)))
	for _, o := range t.Out {
		b = append(b, o.Address.Version)
		b = append(b, o.Address.Key[:]...)
		b = binary.LittleEndian.AppendUint64(b, o.Coins)
		b = binary.LittleEndian.AppendUint64(b, o.Hours)
	}
	return b
}

// InnerHash is SHA-256 of the encoded inputs and outputs (Skycoin's
// Transaction.HashInner): what every input's signature commits to.
func (t *Transaction) InnerHash() [32]byte {
	return sha256.Sum256(t.appendBody(nil))
}

// Size is the length of the encoded transaction in bytes.
func (t *Transaction) Size() int {
	return emptySize + sigSize*len(t.Sigs) + 32*len(t.In) + outputSize*len(t.Out)
}

// Encode returns the transaction as Skycoin serializes it: its length,
// type, inner hash (computed), signatures, inputs and outputs.
func (t *Transaction) Encode() []byte {
	b := make([]byte, 0, t.Size())
	b = binary.LittleEndian.AppendUint32(b, uint32(t.Size()))
	b = append(b, t.Type)
	ih := t.InnerHash()
	b = append(b, ih[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Sigs)))
	for _, s := range t.Sigs {
		b = append(b, s[:]...)
	}
	return t.appendBody(b)
}

// ID is the transaction's hash, SHA-256 of its encoding (Skycoin's
// Transaction.Hash, the "txid").
func (t *Transaction) ID() [32]byte { return sha256.Sum256(t.Encode()) }

// UxID is the ID of the unspent output out of transaction src: SHA-256 of
// its body (Skycoin's UxBody: source transaction, address, coins, hours).
// A host that asks the wallet to spend an output supplies the body, and the
// wallet checks it against the input's UxID before it shows the coins.
func UxID(src [32]byte, out Output) [32]byte {
	b := make([]byte, 0, 32+outputSize)
	b = append(b, src[:]...)
	b = append(b, out.Address.Version)
	b = append(b, out.Address.Key[:]...)
	b = binary.LittleEndian.AppendUint64(b, out.Coins)
	b = binary.LittleEndian.AppendUint64(b, out.Hours)
	return sha256.Sum256(b)
}

// SigHash is what input i's signature signs: SHA-256(inner hash ‖ input).
func (t *Transaction) SigHash(i int) [32]byte {
	ih := t.InnerHash()
	var b [64]byte
	copy(b[:32], ih[:])
	copy(b[32:], t.In[i][:])
	return sha256.Sum256(b[:])
}

// SignInput signs input i with key and puts the signature in place (Sigs
// grows to one per input). Skycoin's signature is r ‖ s ‖ recovery id, the
// recovery byte last; identity.SignCompact makes it in constant time.
func (t *Transaction) SignInput(i int, key *secp256k1.PrivateKey) error {
	if i < 0 || i >= len(t.In) {
		return fmt.Errorf("skycoin: input %d of %d", i, len(t.In))
	}
	h := t.SigHash(i)
	c, err := identity.SignCompact(key, h[:])
	if err != nil {
		return err
	}
	for len(t.Sigs) < len(t.In) {
		t.Sigs = append(t.Sigs, [sigSize]byte{})
	}
	copy(t.Sigs[i][:64], c[1:])
	t.Sigs[i][64] = c[0] - 27 - 4
	return nil
}

// InputSigner returns the address whose key made input i's signature, from
// the signature and SigHash(i) (public-key recovery). Errors: no signature
// for i, or one that recovers no key.
func (t *Transaction) InputSigner(i int) (identity.Address, error) {
	if i < 0 || i >= len(t.In) || i >= len(t.Sigs) {
		return identity.Address{}, fmt.Errorf("skycoin: no signature for input %d", i)
	}
	s := t.Sigs[i]
	if s[64] > 3 {
		return identity.Address{}, fmt.Errorf("skycoin: input %d: recovery id %d", i, s[64])
	}
	c := make([]byte, 65)
	c[0] = 27 + 4 + s[64]
	copy(c[1:], s[:64])
	h := t.SigHash(i)
	pub, _, err := ecdsa.RecoverCompact(c, h[:])
	if err != nil {
		return identity.Address{}, fmt.Errorf("skycoin: input %d: %v", i, err)
	}
	return identity.AddressFromPublicKey(pub.SerializeCompressed())
}

// DecodeTransaction parses an encoded transaction, checking its length
// field, counts and inner hash. Errors wrap ErrMalformed and say what is
// wrong. At most MaxTransactionSize bytes, which bounds every count.
func DecodeTransaction(b []byte) (*Transaction, error) {
	if len(b) > MaxTransactionSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(b), MaxTransactionSize)
	}
	if len(b) < emptySize {
		return nil, fmt.Errorf("%w: %d bytes, less than an empty transaction's %d", ErrMalformed, len(b), emptySize)
	}
	if n := binary.LittleEndian.Uint32(b); int(n) != len(b) {
		return nil, fmt.Errorf("%w: length field %d, but %d bytes", ErrMalformed, n, len(b))
	}
	t := &Transaction{Type: b[4]}
	var inner [32]byte
	copy(inner[:], b[5:37])
	p := b[headerSize:]
	count := func(what string, size int) (int, error) {
		if len(p) < 4 {
			return 0, fmt.Errorf("%w: ends before the %s count", ErrMalformed, what)
		}
		n := int(binary.LittleEndian.Uint32(p))
		p = p[4:]
		if n > len(p)/size {
			return 0, fmt.Errorf("%w: %d %s do not fit the %d bytes left", ErrMalformed, n, what, len(p))
		}
		return n, nil
	}
	n, err := count("signatures", sigSize)
	if err != nil {
		return nil, err
	}
	t.Sigs = make([][sigSize]byte, n)
	for i := range n {
		copy(t.Sigs[i][:], p)
		p = p[sigSize:]
	}
	if n, err = count("inputs", 32); err != nil {
		return nil, err
	}
	t.In = make([][32]byte, n)
	for i := range n {
		copy(t.In[i][:], p)
		p = p[32:]
	}
	if n, err = count("outputs", outputSize); err != nil {
		return nil, err
	}
	t.Out = make([]Output, n)
	for i := range n {
		o := &t.Out[i]
		o.Address.Version = p[0]
		copy(o.Address.Key[:], p[1:21])
		o.Coins = binary.LittleEndian.Uint64(p[21:])
		o.Hours = binary.LittleEndian.Uint64(p[29:])
		p = p[outputSize:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the outputs", ErrMalformed, len(p))
	}
	if len(t.Sigs) != 0 && len(t.Sigs) != len(t.In) {
		return nil, fmt.Errorf("%w: %d signatures for %d inputs", ErrMalformed, len(t.Sigs), len(t.In))
	}
	if t.InnerHash() != inner {
		return nil, fmt.Errorf("%w: the inner hash does not match the inputs and outputs", ErrMalformed)
	}
	return t, nil
}
