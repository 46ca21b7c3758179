package skycoin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/identity"
)

// Vectors of Skycoin's hardware wallet.
//
// skycoin/hardware-wallet-go, commit 17746f44286f551ac11f08f0b516b7660c39bbd1
// (2025-12-14):
//   - src/cli/integration/integration_test.go: defaultSeed, the emulator's
//     mnemonic; TestCheckMessageSignature, a signature its firmware made of
//     "Hello World" with the mnemonic's first address (added in commit
//     0abccbd2a0674bc88e50bfe1494ccb04eb14ca92); TestTransactionSign,
//     transactions and the digests the firmware signed for their inputs,
//     which the test then checks as "messages".
//   - cmd/cli/README.md, checkMessageSignature example: an older firmware's
//     base58 signature of "Hello World!" by the same address (added in
//     commit d47062a42f257802768944b9258314bdc1a1c5cf).
//
// skycoin/hardware-wallet, commit ea688f7f2b91eb82c0d6b8cf209fd3ac206c598c
// (2020-10-07), skycoin-api/test_skycoin_crypto.c: test_checkdigest and
// test_compute_sha256sum.
const (
	hwSeed        = "cloud flower upset remain green metal below cup stem infant art thank"
	hwAddress     = "2EU3JbveHdkxW6z5tdhbbB2kRAWvXC2pLzw"
	hwHelloSig    = "f026001ee2d4e6bf4dfdbbdd33b6622bae24c8f6232fc19e5dd0013f2b68f0f14606d448897df20348c8b63dcad6923e9fecb2fe0969b183dc31eb4796e001d101"
	hwHelloBang58 = "GvKS4S3CA2YTpEPFA47yFdC5CP3y3qB18jwiX1URXqWQTvMjokd3A4upPz4wyeAyKJEtRdRDGUvUgoGASpsTTUeMn"
)

// hwTxSamples is hardware-wallet-go's TestTransactionSign: inputs (UxIDs),
// outputs, and the digests the firmware signed for each input.
var hwTxSamples = []struct {
	in      []string
	out     []Output
	addr    []string // the outputs' addresses
	digests []string
}{
	{[]string{"181bd5656115172fe81451fae4fb56498a97744d89702e73da75ba91ed5200f9"},
		[]Output{{Coins: 100000, Hours: 2}}, []string{"K9TzLrgqz7uXn3QJHGxmzdRByAzH33J2ot"},
		[]string{"d11c62b1e0e9abf629b1f5f4699cef9fbc504b45ceedf0047ead686979498218"}},
	{[]string{"01a9ef6c25271229ef9760e1536c3dc5ccf0ead7de93a64c12a01340670d87e9", "8c2c97bfd34e0f0f9833b789ce03c2e80ac0b94b9d0b99cee6ea76fb662e8e1c"},
		[]Output{{Coins: 20800000, Hours: 255}}, []string{"K9TzLrgqz7uXn3QJHGxmzdRByAzH33J2ot"},
		[]string{"9bbde062d665a8b11ae15aee6d4f32f0f3d61af55160c142060795a219378a54", "f947b0352b19672f7b7d04dc2f1fdc47bc5355878f3c47a43d4d4cfbae07d026"}},
	{[]string{"da3b5e29250289ad78dc42dcf007ab8f61126198e71e8306ff8c11696a0c40f7", "33e826d62489932905dd936d3edbb74f37211d68d4657689ed4b8027edcad0fb", "668f4c144ad2a4458eaef89a38f10e5307b4f0e8fce2ade96fb2cc2409fa6592"},
		[]Output{{Coins: 111000000, Hours: 6464556}, {Coins: 1900000, Hours: 1}}, []string{"K9TzLrgqz7uXn3QJHGxmzdRByAzH33J2ot", "2iNNt6fm9LszSWe51693BeyNUKX34pPaLx8"},
		[]string{"ff383c647551a3ba0387f8334b3f397e45f9fc7b3b5c3b18ab9f2b9737bce039", "c918d83d8d3b1ee85c1d2af6885a0067bacc636d2ebb77655150f86e80bf4417", "0e827c5d16bab0c3451850cc6deeaa332cbcb88322deea4ea939424b072e9b97"}},
	{[]string{"b99f62c5b42aec6be97f2ca74bb1a846be9248e8e19771943c501e0b48a43d82", "cd13f705d9c1ce4ac602e4c4347e986deab8e742eae8996b34c429874799ebb2"},
		[]Output{{Coins: 23100000, Hours: 0}}, []string{"22S8njPeKUNJBijQjNCzaasXVyf22rWv7gF"},
		[]string{"42a26380399172f2024067a17704fceda607283a0f17cb0024ab7a96fc6e4ac6", "5e0a5a8c7ea4a2a500c24e3a4bfd83ef9f74f3c2ff4bdc01240b66a41e34ebbf"}},
	{[]string{"4c12fdd28bd580989892b0518f51de3add96b5efb0f54f0cd6115054c682e1f1"},
		[]Output{{Coins: 1000000, Hours: 0}}, []string{"2iNNt6fm9LszSWe51693BeyNUKX34pPaLx8"},
		[]string{"c40e110f5e460532bfb03a5a0e50262d92d8913a89c87869adb5a443463dea69"}},
	{[]string{"c5467f398fc3b9d7255d417d9ca208c0a1dfa0ee573974a5fdeb654e1735fc59"},
		[]Output{{Coins: 10000000, Hours: 1}, {Coins: 5500000, Hours: 0}, {Coins: 4500000, Hours: 1}}, []string{"K9TzLrgqz7uXn3QJHGxmzdRByAzH33J2ot", "VNz8LR9JTSoz5o7qPHm3QHj4EiJB6LV18L", "22S8njPeKUNJBijQjNCzaasXVyf22rWv7gF"},
		[]string{"7edea77354eca0999b1b023014eb04638b05313d40711707dd03a9935696ccd1"}},
	{[]string{"ae6fcae589898d6003362aaf39c56852f65369d55bf0f2f672bcc268c15a32da"},
		[]Output{{Coins: 1000000, Hours: 1000}}, []string{"3pXt9MSQJkwgPXLNePLQkjKq8tsRnFZGQA"},
		[]string{"47bfa37c79f7960df8e8a421250922c5165167f4c91ecca5682c1106f9010a7f"}},
	{[]string{"ae6fcae589898d6003362aaf39c56852f65369d55bf0f2f672bcc268c15a32da"},
		[]Output{{Coins: 300000, Hours: 500}, {Coins: 700000, Hours: 500}}, []string{"3pXt9MSQJkwgPXLNePLQkjKq8tsRnFZGQA", "S6Dnv6gRTgsHCmZQxjN7cX5aRjJvDvqwp9"},
		[]string{"e0c6e4982b1b8c33c5be55ac115b69be68f209c5d9054954653e14874664b57d"}},
}

func hwKey(t testing.TB) (*secp256k1.PrivateKey, identity.Address) {
	t.Helper()
	keys, err := DeterministicKeys([]byte(hwSeed), 1)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := identity.ParseAddress(hwAddress)
	if err != nil {
		t.Fatal(err)
	}
	return keys[0], addr
}

// Signatures Skycoin's firmware made verify, in its current hex form (and
// in upper case, which its reader accepts) and its older base58 form; the
// same signature fails for another message, another address, or with a
// byte changed.
func TestVerifyMessageFirmwareVectors(t *testing.T) {
	_, addr := hwKey(t)
	for _, c := range []struct{ msg, sig string }{
		{"Hello World", hwHelloSig},
		{"Hello World", strings.ToUpper(hwHelloSig)},
		{"Hello World!", hwHelloBang58},
	} {
		if err := VerifyMessage(addr, []byte(c.msg), c.sig); err != nil {
			t.Errorf("%q, %s: %v", c.msg, c.sig, err)
		}
	}
	other, _ := identity.ParseAddress("K9TzLrgqz7uXn3QJHGxmzdRByAzH33J2ot")
	flip := func(i int, x byte) string {
		b, _ := hex.DecodeString(hwHelloSig)
		b[i] ^= x
		return hex.EncodeToString(b)
	}
	for name, c := range map[string]struct {
		addr      identity.Address
		msg, sig  string
		wantInErr string
	}{
		"other message":  {addr, "Hello World!", hwHelloSig, "signed by"},
		"other address":  {other, "Hello World", hwHelloSig, "not K9Tz"},
		"r changed":      {addr, "Hello World", flip(5, 1), ""},
		"recovery id":    {addr, "Hello World", flip(64, 4), "recovery id 5"},
		"s top bit":      {addr, "Hello World", flip(32, 0x80), "top bit"},
		"short":          {addr, "Hello World", hwHelloSig[:128], "not 65 bytes"},
		"not hex":        {addr, "Hello World", "zz" + hwHelloSig[2:], "not 65 bytes"},
		"NUL in message": {addr, "Hello World\x00", hwHelloSig, "NUL"},
	} {
		err := VerifyMessage(c.addr, []byte(c.msg), c.sig)
		if !errors.Is(err, ErrMessageSignature) || !strings.Contains(err.Error(), c.wantInErr) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The firmware emulator's mnemonic gives, by the wallet's key chain, the
// address its tests sign with; the wallet's signature of "Hello World"
// with that key verifies by the rule the firmware's does, is in the
// firmware's form (130 lowercase hex digits, low S), and is deterministic.
func TestSignMessageFirmwareKey(t *testing.T) {
	key, addr := hwKey(t)
	pub, _ := identity.PublicKeyOf(key)
	if a, _ := identity.AddressFromPublicKey(pub); a != addr {
		t.Fatalf("the emulator's mnemonic gives %s, want %s", a, addr)
	}
	for _, msg := range []string{"Hello World", "", "naïve café — ünïcödé ✓", strings.Repeat("x", MaxMessageSize)} {
		sig, err := SignMessage(key, []byte(msg))
		if err != nil {
			t.Fatalf("%.20q: %v", msg, err)
		}
		if len(sig) != 2*MessageSignatureSize || strings.ToLower(sig) != sig {
			t.Errorf("%.20q: signature %q not 130 lowercase hex digits", msg, sig)
		}
		b, _ := hex.DecodeString(sig)
		var s secp256k1.ModNScalar
		s.SetByteSlice(b[32:64])
		if s.IsOverHalfOrder() {
			t.Errorf("%.20q: high S", msg)
		}
		if err := VerifyMessage(addr, []byte(msg), sig); err != nil {
			t.Errorf("%.20q: %v", msg, err)
		}
		again, _ := SignMessage(key, []byte(msg))
		if again != sig {
			t.Errorf("%.20q: two signatures differ", msg)
		}
	}
}

// The digests hardware-wallet-go's TestTransactionSign checks as
// "messages" are the SigHashes of the transactions it signs; SignMessage
// refuses every one of them (as 64 hex digits in either case), any other
// message of 64 bytes (the length of a SigHash's preimage), and a message
// too long or with a NUL byte.
func TestSignMessageRefuses(t *testing.T) {
	key, _ := hwKey(t)
	for n, c := range hwTxSamples {
		tx := &Transaction{}
		for _, in := range c.in {
			tx.In = append(tx.In, hash32(t, in))
		}
		for i, o := range c.out {
			a, err := identity.ParseAddress(c.addr[i])
			if err != nil {
				t.Fatal(err)
			}
			o.Address = a
			tx.Out = append(tx.Out, o)
		}
		for i, d := range c.digests {
			if h := tx.SigHash(i); hex.EncodeToString(h[:]) != d {
				t.Errorf("sample %d input %d: SigHash %x, want %s", n+1, i, h, d)
			}
			for _, msg := range []string{d, strings.ToUpper(d)} {
				if _, err := SignMessage(key, []byte(msg)); !errors.Is(err, ErrMessageRefused) {
					t.Errorf("sample %d input %d: a transaction's digest as a message: %v", n+1, i, err)
				}
			}
		}
	}
	// A transaction's inner hash and an input's UxID, as a message, hash to
	// the input's SigHash: refused, and so is every other 64-byte message.
	r, _, _ := fixture(t)
	ih := r.tx.InnerHash()
	preimage := append(ih[:], r.tx.In[1][:]...)
	if sha256.Sum256(preimage) != r.tx.SigHash(1) {
		t.Fatal("SigHash is not SHA-256(inner hash ‖ UxID)")
	}
	for _, n := range []int{63, 65} {
		if _, err := SignMessage(key, []byte(strings.Repeat("a", n))); err != nil {
			t.Errorf("%d bytes of text: %v", n, err)
		}
	}
	for name, msg := range map[string][]byte{
		"too long":         make([]byte, MaxMessageSize+1),
		"NUL":              []byte("pay\x00 me"),
		"SigHash preimage": preimage,
		"64 bytes of text": []byte(strings.Repeat("a", 64)),
	} {
		if _, err := SignMessage(key, msg); !errors.Is(err, ErrMessageRefused) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := SignMessage(nil, []byte("x")); !errors.Is(err, identity.ErrPrivateKey) {
		t.Errorf("nil key: %v", err)
	}
}

// A 64-hex-digit message is the hash it spells, as the firmware reads it
// (test_checkdigest's strings), and Skycoin's own hash signatures in its
// golden files (cipher.SignHash of each input-hashes.golden hash, by each
// seed key) verify as signatures of the hash's hex: the reason
// SignMessage refuses such messages. Other text is hashed with SHA-256
// (test_compute_sha256sum's vectors).
func TestMessageDigest(t *testing.T) {
	for s, want := range map[string]bool{
		"02df09821cff4874198a1dbdc462d224bd99728eeed024185879225762376132":   true,
		"02DF09821CFF4874198A1DBDC462D224BD99728EEED024185879225762376132":   true,
		"02df09821cff4874198a1dbdc462d224bd99728eeed0241858792257623761":     false, // too short
		"02df09821cff4874198a1dbdc462d224bd99728eeed0241858792257623761256":  false, // too long
		"02df09821cff4874198a1dbdc462d224bd99728eeed0241858792257623761r":    false, // not hex
		"024f7fd15da6c7fc7d0410d184073ef702104f82452da9b3e3792db01a8b7907c3": false, // 66 digits
	} {
		if IsDigestMessage([]byte(s)) != want {
			t.Errorf("IsDigestMessage(%q) = %v", s, !want)
		}
	}
	for msg, want := range map[string]string{
		"seed":        "19b25856e1c150ca834cffc8b59b23adbd0ec0389e58eb22b3b64768098d002b",
		"random_seed": "7b491face15c5be43df3affe42e6e4aab48522a3b564043de464e8de50184a5d",
		"024f7fd15da6c7fc7d0410d184073ef702104f82452da9b3e3792db01a8b7907c3": "a5daa8c9d03a9ec500088bdf0123a9d865725b03895b1291f25500737298e0a9",
		"02df09821cff4874198a1dbdc462d224bd99728eeed024185879225762376132":   "02df09821cff4874198a1dbdc462d224bd99728eeed024185879225762376132",
	} {
		if d := MessageDigest([]byte(msg)); hex.EncodeToString(d[:]) != want {
			t.Errorf("MessageDigest(%q) = %x, want %s", msg, d, want)
		}
	}

	var hashes struct {
		Hashes []string `json:"hashes"`
	}
	readJSON(t, "input-hashes.golden", &hashes)
	var g struct {
		Keys []struct {
			Address    string   `json:"address"`
			Signatures []string `json:"signatures"`
		} `json:"keys"`
	}
	readJSON(t, "seed-0001.golden", &g)
	checked := 0
	for _, k := range g.Keys {
		addr, err := identity.ParseAddress(k.Address)
		if err != nil {
			t.Fatal(err)
		}
		for i, sig := range k.Signatures {
			if err := VerifyMessage(addr, []byte(hashes.Hashes[i]), sig); err != nil {
				t.Errorf("%s, hash %d: %v", k.Address, i, err)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no golden signatures")
	}
	// The same hash as text (hashed again) is another message.
	d := sha256.Sum256([]byte("not a digest"))
	if IsDigestMessage(d[:]) {
		t.Error("raw bytes taken for hex digits")
	}
}

func TestMessagePrintable(t *testing.T) {
	for s, want := range map[string]bool{
		"":                         true,
		"I own this address.\nBob": true,
		"naïve café — ünïcödé ✓ 日本語": true,
		"tab\there":       false,
		"cr\rhere":        false,
		"esc\x1b[2Jclear": false,
		"nul\x00":         false,
		"bidi \u202eevil": false,
		"zero\u200bwidth": false,
		"bad \xff utf8":   false,
		"del\x7f":         false,
	} {
		if MessagePrintable([]byte(s)) != want {
			t.Errorf("MessagePrintable(%q) = %v", s, !want)
		}
	}
}

// VerifyMessage never panics, and accepts only what recovers the address
// it is given.
func FuzzVerifyMessage(f *testing.F) {
	f.Add([]byte("Hello World"), hwHelloSig)
	f.Add([]byte("Hello World!"), hwHelloBang58)
	f.Add([]byte("02df09821cff4874198a1dbdc462d224bd99728eeed024185879225762376132"), hwHelloSig)
	addr, _ := identity.ParseAddress(hwAddress)
	f.Fuzz(func(t *testing.T, msg []byte, sig string) {
		err := VerifyMessage(addr, msg, sig)
		if err != nil && !errors.Is(err, ErrMessageSignature) {
			t.Fatalf("an error that is not ErrMessageSignature: %v", err)
		}
	})
}

// Acceptance 1 of issue 15: our signatures over input-hashes.golden, made
// as SignInput makes an input's (r ‖ s ‖ recovery id), verify under
// Skycoin's rule (cipher.VerifyAddressSignedHash: the recovery id below 4,
// s's top bit clear, the recovered key's address the signer's), for every
// key of seed-0000.golden and seed-0001.golden. (Skycoin's own signatures
// in those files use other nonces; TestMessageDigest verifies them.)
func TestInputHashSignaturesVerify(t *testing.T) {
	var hashes struct {
		Hashes []string `json:"hashes"`
	}
	readJSON(t, "input-hashes.golden", &hashes)
	n := 0
	for _, file := range []string{"seed-0000.golden", "seed-0001.golden"} {
		var g struct {
			Keys []struct {
				Address string `json:"address"`
				Secret  string `json:"secret"`
			} `json:"keys"`
		}
		readJSON(t, file, &g)
		for _, k := range g.Keys {
			sec, _ := hex.DecodeString(k.Secret)
			key := secp256k1.PrivKeyFromBytes(sec)
			addr, err := identity.ParseAddress(k.Address)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hashes.Hashes {
				hb, _ := hex.DecodeString(h)
				c, err := identity.SignCompact(key, hb)
				if err != nil {
					t.Fatal(err)
				}
				var sig [65]byte
				copy(sig[:64], c[1:])
				sig[64] = c[0] - 27 - 4
				if err := VerifyMessage(addr, []byte(h), hex.EncodeToString(sig[:])); err != nil {
					t.Errorf("%s: %s, hash %s: %v", file, k.Address, h, err)
				}
				n++
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d signatures checked", n)
	}
	t.Logf("%d signatures over input-hashes.golden verify under Skycoin's rule", n)
}
