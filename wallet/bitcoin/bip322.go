package bitcoin

// BIP322 (Generic Signed Message Format), the "simple" variant: a message is
// signed by spending, in a virtual transaction to_sign, the output of another
// virtual transaction to_spend that commits to the message's hash and pays
// to the address's scriptPubKey. The signature is to_sign's input witness.
// Signing here covers the wallet's own outputs (P2WPKH, P2TR key path);
// verification runs btcd's script interpreter and so also covers P2WSH.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcec/v2"
	becdsa "github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	voi "gitlab.com/yawning/secp256k1-voi"

	"github.com/skyfleet/skyfleet/services/identity"
)

// MaxMessageSize is the longest message, in bytes, the wallet signs or
// checks by BIP322. BIP322 sets no limit for the simple variant, and
// §PSBT creator recommends "a maximum length of a few kilobytes" to signers,
// with very large messages committed to by hash instead. The wallet shows a
// message in full on its screen before signing it (BIP322 §PSBT signer: "the
// signer must inform the user about the message they are signing"), and 4 KiB
// is already dozens of screens of text; a longer one could not be read, so
// it is not signed.
const MaxMessageSize = 4096

// SimplePrefix is the variant prefix of a BIP322 simple signature (BIP322
// §Types of Signatures: "Signers MUST prefix the signature with the variant
// that was used"). SignMessageSimple puts it before the base64;
// VerifyMessageSimple accepts a signature with or without it.
const SimplePrefix = "smp"

// BIP322's other variants' prefixes (§Types of Signatures), refused as
// inconclusive: this verifier checks the simple variant only.
const (
	fullPrefix          = "ful"
	proofOfFundsPrefix  = "pof"
	messageTag          = "BIP0322-signed-message"
	maxSimpleWitnessLen = 16 << 10 // decoded bytes: a P2WSH script is at most 10,000 (consensus), its items at most 520
	maxAddressLen       = 90       // BIP173's limit on a bech32 string; base58 addresses are shorter
)

// The outcomes of BIP322 §Verification Process other than "valid": every
// error VerifyMessageSimple returns wraps one of these (or
// ErrMessageTooLong), with the reason.
var (
	// ErrBIP322Invalid is BIP322's "invalid" state: some check failed
	// (an undecodable address or signature, a script that does not
	// accept the witness, a signature that breaks the §Verification
	// Process required rules).
	ErrBIP322Invalid = errors.New("bitcoin: BIP322 signature invalid")
	// ErrBIP322Inconclusive is BIP322's "inconclusive" state: the validator
	// could not check the signature (the full or proof-of-funds variant, a
	// witness version above 1, a rule the §Verification Process marks
	// upgradeable, a Taproot script-path spend or annex).
	ErrBIP322Inconclusive = errors.New("bitcoin: BIP322 signature inconclusive")
	// ErrMessageTooLong refuses a message over MaxMessageSize (BIP322
	// §PSBT creator: signers may impose safety limits).
	ErrMessageTooLong = errors.New("bitcoin: BIP322 message too long")
)

// MessageHash is BIP322's message_hash (§Full): the BIP340 tagged hash
// sha256_tag(m) with tag "BIP0322-signed-message", over the message's bytes
// as they are, without a length prefix or terminator.
func MessageHash(msg []byte) [32]byte {
	return taggedHash(messageTag, msg)
}

// toSpend is BIP322 §Full's to_spend transaction for a message_challenge
// (the scriptPubKey signed for) and a message.
func toSpend(challenge, msg []byte) *wire.MsgTx {
	h := MessageHash(msg)
	sigScript := make([]byte, 0, 34)
	sigScript = append(sigScript, txscript.OP_0, txscript.OP_DATA_32)
	sigScript = append(sigScript, h[:]...)
	tx := wire.NewMsgTx(0)
	tx.LockTime = 0
	tx.AddTxIn(&wire.TxIn{
		PreviousOutPoint: wire.OutPoint{Hash: chainhash.Hash{}, Index: 0xFFFFFFFF},
		SignatureScript:  sigScript,
		Sequence:         0,
	})
	tx.AddTxOut(&wire.TxOut{Value: 0, PkScript: bytes.Clone(challenge)})
	return tx
}

// toSign is BIP322 §Full's to_sign transaction spending spend's output with
// the witness (the message_signature), at the simple variant's defaults:
// version, lock time and sequence 0, an empty scriptSig.
func toSign(spend *wire.MsgTx, witness wire.TxWitness) *wire.MsgTx {
	tx := wire.NewMsgTx(0)
	tx.LockTime = 0
	tx.AddTxIn(&wire.TxIn{
		PreviousOutPoint: wire.OutPoint{Hash: spend.TxHash(), Index: 0},
		Witness:          witness,
		Sequence:         0,
	})
	tx.AddTxOut(&wire.TxOut{Value: 0, PkScript: []byte{txscript.OP_RETURN}})
	return tx
}

// prevOuts is the fetcher of to_sign's one previous output, to_spend's
// output 0 (BIP341 sighashes commit to every spent output's amount and
// script).
func prevOuts(spend *wire.MsgTx) *txscript.MultiPrevOutFetcher {
	return txscript.NewMultiPrevOutFetcher(map[wire.OutPoint]*wire.TxOut{
		{Hash: spend.TxHash(), Index: 0}: spend.TxOut[0],
	})
}

// SignMessageSimple signs msg for the output scriptPubKey with priv by
// BIP322 §Signing, and returns the simple signature (§Simple): "smp" and the
// base64 of to_sign's input witness, consensus encoded. The output must be
// priv's own: P2WPKH (signed by BIP143 with SIGHASH_ALL, through
// identity.SignCompact: constant time, RFC 6979 nonce, low S; the witness is
// the DER signature with 0x01, then the public key), or P2TR with no script
// tree (BIP86; signed by BIP341 with SIGHASH_DEFAULT through
// SignTaprootKeyPath, tweaked as it says; the witness is the 64-byte
// signature). aux gives the BIP340 auxiliary randomness (crypto/rand when
// nil). The signature is verified by VerifyMessageSimple's checks before it
// is returned. Call it only after the user approved msg as shown (BIP322
// §PSBT signer; CheckMessageText says whether it can be shown as text).
// Errors: ErrKey, ErrMessageTooLong, an output of another type (named) or
// not priv's, a failure to read aux.
func SignMessageSimple(priv *secp256k1.PrivateKey, scriptPubKey, msg []byte, aux io.Reader) (string, error) {
	if len(msg) > MaxMessageSize {
		return "", fmt.Errorf("%w: %d bytes, more than %d", ErrMessageTooLong, len(msg), MaxMessageSize)
	}
	d, err := secret(priv)
	if err != nil {
		return "", err
	}
	pub := voi.NewIdentityPoint().ScalarBaseMult(d).CompressedBytes()
	d.Zero()

	kind := kindOf(scriptPubKey)
	var own Output
	switch kind {
	case KindP2WPKH:
		own, err = P2WPKH(pub)
	case KindP2TR:
		own, err = P2TR(pub)
	default:
		return "", fmt.Errorf("bitcoin: BIP322 simple signing for an output of type %s is not supported: the wallet signs for P2WPKH and P2TR (key path) outputs only", kind)
	}
	if err != nil {
		return "", err
	}
	if !bytes.Equal(own.ScriptPubKey, scriptPubKey) {
		return "", fmt.Errorf("bitcoin: BIP322: the %s output to sign for is not the key's own", kind)
	}

	spend := toSpend(scriptPubKey, msg)
	sign := toSign(spend, nil)
	fetcher := prevOuts(spend)
	hashes := txscript.NewTxSigHashes(sign, fetcher)
	var witness wire.TxWitness
	switch kind {
	case KindP2WPKH:
		// BIP143's scriptCode for P2WPKH: the P2PKH script of the key hash.
		code, err := txscript.NewScriptBuilder().AddOp(txscript.OP_DUP).AddOp(txscript.OP_HASH160).
			AddData(btcutil.Hash160(pub)).AddOp(txscript.OP_EQUALVERIFY).AddOp(txscript.OP_CHECKSIG).Script()
		if err != nil {
			return "", err
		}
		h, err := txscript.CalcWitnessSigHash(code, hashes, txscript.SigHashAll, sign, 0, 0)
		if err != nil {
			return "", fmt.Errorf("bitcoin: BIP322: BIP143 sighash: %w", err)
		}
		c, err := identity.SignCompact(priv, h)
		if err != nil {
			return "", err
		}
		var r, s btcec.ModNScalar
		r.SetByteSlice(c[1:33])
		s.SetByteSlice(c[33:65])
		der := append(becdsa.NewSignature(&r, &s).Serialize(), byte(txscript.SigHashAll))
		witness = wire.TxWitness{der, pub}
	case KindP2TR:
		h, err := txscript.CalcTaprootSignatureHash(hashes, txscript.SigHashDefault, sign, 0, fetcher)
		if err != nil {
			return "", fmt.Errorf("bitcoin: BIP322: BIP341 sighash: %w", err)
		}
		if aux == nil {
			aux = rand.Reader
		}
		var a [32]byte
		if _, err := io.ReadFull(aux, a[:]); err != nil {
			return "", fmt.Errorf("bitcoin: BIP322: reading the auxiliary randomness: %w", err)
		}
		sig, err := SignTaprootKeyPath(priv, h, a[:])
		clear(a[:])
		if err != nil {
			return "", err
		}
		witness = wire.TxWitness{sig[:]}
	}
	// A signature that does not verify is a fault (or a bug): nothing is
	// returned then.
	if err := verifyWitness(scriptPubKey, msg, witness); err != nil {
		return "", fmt.Errorf("bitcoin: BIP322: the signature made failed its check: %w", err)
	}
	return SimplePrefix + base64.StdEncoding.EncodeToString(encodeWitness(witness)), nil
}

// encodeWitness is a witness stack's consensus encoding (BIP141): the item
// count, then each item with its length, as compact sizes.
func encodeWitness(w wire.TxWitness) []byte {
	var b bytes.Buffer
	wire.WriteVarInt(&b, 0, uint64(len(w)))
	for _, item := range w {
		wire.WriteVarBytes(&b, 0, item)
	}
	return b.Bytes()
}

// decodeWitness reads a consensus-encoded witness stack that fills b
// exactly, with canonical compact sizes (btcd's ReadVarInt refuses others).
func decodeWitness(b []byte) (wire.TxWitness, error) {
	r := bytes.NewReader(b)
	n, err := wire.ReadVarInt(r, 0)
	if err != nil {
		return nil, fmt.Errorf("the item count: %v", err)
	}
	if n == 0 {
		return nil, errors.New("an empty witness stack")
	}
	if n > txscript.MaxStackSize || n > uint64(r.Len()) {
		return nil, fmt.Errorf("%d witness items in %d bytes", n, len(b))
	}
	w := make(wire.TxWitness, n)
	for i := range w {
		l, err := wire.ReadVarInt(r, 0)
		if err != nil {
			return nil, fmt.Errorf("item %d's length: %v", i, err)
		}
		if l > uint64(r.Len()) {
			return nil, fmt.Errorf("item %d is %d bytes, %d are left", i, l, r.Len())
		}
		w[i] = make([]byte, l)
		io.ReadFull(r, w[i])
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the witness stack", r.Len())
	}
	if !bytes.Equal(encodeWitness(w), b) { // cannot differ: a check that it reads what it writes
		return nil, errors.New("not a canonical witness encoding")
	}
	return w, nil
}

// VerifyMessageSimple checks a BIP322 simple signature sig of msg for the
// address, on the network params (mainnet when nil), by BIP322
// §Verification Process: it builds to_spend and to_sign (§Full) and runs
// btcd's script interpreter on the address's scriptPubKey with the witness
// (BIP341 sighashes fetch to_spend's output), with its standard flags, which
// include the required rules' LOW_S, STRICTENC, NULLFAIL, MINIMALDATA,
// CLEANSTACK and MINIMALIF. sig is "smp" and base64 (§Types of Signatures),
// or base64 alone, which the BIP lets a verifier take as simple. It returns
// nil for BIP322's "valid" (the simple variant sets no time lock or age),
// and otherwise an error wrapping ErrBIP322Invalid, ErrBIP322Inconclusive or
// ErrMessageTooLong. The addresses it checks are the native SegWit ones the
// simple variant is for: P2WPKH, P2WSH and P2TR; a P2TR signature is checked
// for the key path only (a script-path spend, or a witness with an annex, is
// inconclusive). The address is at most 90 characters, the signature at
// most 16 KiB decoded, the message at most MaxMessageSize bytes.
//
// The required rule that every signature use SIGHASH_ALL (or, for Taproot,
// SIGHASH_DEFAULT) is checked exactly for P2WPKH and P2TR, whose witness
// says where the signature is. In a P2WSH witness, the interpreter does not
// say which items it took as signatures, so every stack item that is a
// strict DER signature followed by one byte is taken to be one and must end
// in 0x01; the witness script must not contain OP_CODESEPARATOR.
func VerifyMessageSimple(address string, msg []byte, sig string, params *chaincfg.Params) error {
	if len(msg) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrMessageTooLong, len(msg), MaxMessageSize)
	}
	if params == nil {
		params = &chaincfg.MainNetParams
	}
	if len(address) > maxAddressLen { // base58 decoding takes time quadratic in the length
		return fmt.Errorf("%w: a %d-character address", ErrBIP322Invalid, len(address))
	}
	a, err := btcutil.DecodeAddress(address, params)
	if err != nil {
		var v btcutil.UnsupportedWitnessVerError
		if errors.As(err, &v) {
			return fmt.Errorf("%w: %q is an address of SegWit version %d (BIP322 §Verification Process: upgradeable rules)", ErrBIP322Inconclusive, address, int(v))
		}
		return fmt.Errorf("%w: %q is not a %s address: %v", ErrBIP322Invalid, address, params.Name, err)
	}
	if !a.IsForNet(params) {
		return fmt.Errorf("%w: %q is not a %s address", ErrBIP322Invalid, address, params.Name)
	}
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrBIP322Invalid, address, err)
	}
	switch kindOf(script) {
	case KindP2WPKH, KindP2WSH, KindP2TR:
	default:
		return fmt.Errorf("%w: %q is an address of type %s; a simple signature is for native SegWit (P2WPKH, P2WSH, P2TR) addresses only (BIP322 §Signing)", ErrBIP322Invalid, address, kindOf(script))
	}

	sig = strings.TrimSpace(sig)
	if len(sig) > len(SimplePrefix)+base64.StdEncoding.EncodedLen(maxSimpleWitnessLen) {
		return fmt.Errorf("%w: a %d-character signature; a simple one is at most %d bytes", ErrBIP322Invalid, len(sig), maxSimpleWitnessLen)
	}
	switch {
	case strings.HasPrefix(sig, SimplePrefix):
		sig = sig[len(SimplePrefix):]
	case strings.HasPrefix(sig, fullPrefix), strings.HasPrefix(sig, proofOfFundsPrefix):
		return fmt.Errorf("%w: a %q signature: this verifier checks the simple variant only (BIP322 §Types of Signatures)", ErrBIP322Inconclusive, sig[:3])
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: the signature is not base64: %v", ErrBIP322Invalid, err)
	}
	w, err := decodeWitness(raw)
	if err != nil {
		return fmt.Errorf("%w: the signature is not a witness stack: %v", ErrBIP322Invalid, err)
	}
	return verifyWitness(script, msg, w)
}

// verifyWitness runs BIP322 §Verification Process on a decoded witness for
// the scriptPubKey.
func verifyWitness(script, msg []byte, w wire.TxWitness) error {
	spend := toSpend(script, msg)
	sign := toSign(spend, w)
	fetcher := prevOuts(spend)
	vm, err := txscript.NewEngine(script, sign, 0, txscript.StandardVerifyFlags, nil,
		txscript.NewTxSigHashes(sign, fetcher), 0, fetcher)
	if err == nil {
		err = vm.Execute()
	}
	if err != nil {
		for _, c := range []txscript.ErrorCode{
			txscript.ErrDiscourageUpgradableNOPs,
			txscript.ErrDiscourageUpgradableWitnessProgram,
			txscript.ErrDiscourageOpSuccess,
			txscript.ErrDiscourageUpgradeableTaprootVersion,
			txscript.ErrDiscourageUpgradeablePubKeyType,
		} {
			if txscript.IsErrorCode(err, c) {
				return fmt.Errorf("%w: %v (BIP322 §Verification Process: upgradeable rules)", ErrBIP322Inconclusive, err)
			}
		}
		reason := err.Error()
		var se txscript.Error
		if errors.As(err, &se) && se.Description == "" {
			reason = se.ErrorCode.String() // btcd gives a failed Schnorr check no description
		}
		return fmt.Errorf("%w: the script does not accept the witness: %s", ErrBIP322Invalid, reason)
	}
	return requiredRules(kindOf(script), w)
}

// requiredRules checks what BIP322 §Verification Process's required rules
// add to the interpreter's flags: the sighash types, and no
// OP_CODESEPARATOR. The witness has passed the interpreter.
func requiredRules(kind Kind, w wire.TxWitness) error {
	switch kind {
	case KindP2WPKH:
		// Two items, the interpreter checked; the first a signature that
		// verified, so not empty.
		if len(w) != 2 || len(w[0]) == 0 {
			return fmt.Errorf("%w: a P2WPKH witness of %d items", ErrBIP322Invalid, len(w))
		}
		if t := w[0][len(w[0])-1]; t != byte(txscript.SigHashAll) {
			return fmt.Errorf("%w: the signature's sighash type is %#x, not SIGHASH_ALL", ErrBIP322Invalid, t)
		}
	case KindP2TR:
		if len(w) != 1 {
			return fmt.Errorf("%w: a P2TR witness of %d items (a script-path spend or an annex): this verifier checks key-path signatures only", ErrBIP322Inconclusive, len(w))
		}
		if len(w[0]) != 64 && len(w[0]) != 65 {
			return fmt.Errorf("%w: a %d-byte Taproot signature", ErrBIP322Invalid, len(w[0]))
		}
		if len(w[0]) == 65 && w[0][64] != byte(txscript.SigHashAll) {
			return fmt.Errorf("%w: the signature's sighash type is %#x, not SIGHASH_DEFAULT or SIGHASH_ALL", ErrBIP322Invalid, w[0][64])
		}
	case KindP2WSH:
		ws := w[len(w)-1]
		tok := txscript.MakeScriptTokenizer(0, ws)
		for tok.Next() {
			if tok.Opcode() == txscript.OP_CODESEPARATOR {
				return fmt.Errorf("%w: the witness script uses OP_CODESEPARATOR", ErrBIP322Invalid)
			}
		}
		for i, item := range w[:len(w)-1] {
			if len(item) < 9 {
				continue
			}
			if _, err := becdsa.ParseDERSignature(item[:len(item)-1]); err == nil && item[len(item)-1] != byte(txscript.SigHashAll) {
				return fmt.Errorf("%w: witness item %d is a signature of sighash type %#x, not SIGHASH_ALL", ErrBIP322Invalid, i, item[len(item)-1])
			}
		}
	default:
		return fmt.Errorf("%w: a %s output", ErrBIP322Inconclusive, kind)
	}
	return nil
}

// CheckMessageText says whether msg can be shown on the wallet's screen as
// text, so that what the user approves is what is signed (BIP322 §PSBT
// signer: "the signer must inform the user about the message"): it must be
// at most MaxMessageSize bytes of valid UTF-8 whose characters are all
// printable (Go's unicode.IsPrint: letters, marks, numbers, punctuation,
// symbols and the ASCII space) or a line feed. Refused, with the offset
// and code point of the first: other control characters (C0, DEL, C1),
// format characters (among them the bidirectional controls U+202A-U+202E,
// U+2066-U+2069, U+200E, U+200F and U+061C, which reorder what is shown,
// and zero-width ones), separators other than the space and the line feed,
// private-use and unassigned code points. A message it refuses can still be
// signed; the caller then shows it another way (in hex) or not at all.
func CheckMessageText(msg []byte) error {
	if len(msg) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrMessageTooLong, len(msg), MaxMessageSize)
	}
	for i := 0; i < len(msg); {
		r, n := utf8.DecodeRune(msg[i:])
		if r == utf8.RuneError && n <= 1 {
			return fmt.Errorf("bitcoin: the message is not UTF-8 at byte %d", i)
		}
		if r != '\n' && !unicode.IsPrint(r) {
			return fmt.Errorf("bitcoin: the message has an unprintable character %U at byte %d", r, i)
		}
		i += n
	}
	return nil
}
