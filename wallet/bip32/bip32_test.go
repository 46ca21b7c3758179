package bip32

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/skyfleet/skyfleet/services/identity"
)

// BIP32 §Test Vectors 1 and 2 as the BIP gives them, and vector 3 (the
// leading-zero case, added to the BIP later), each chain's xpub and xprv.
var vectors = []struct {
	seed   string
	chains [][3]string // path, xpub, xprv
}{
	{"000102030405060708090a0b0c0d0e0f", [][3]string{
		{"m", "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8", "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"},
		{"m/0H", "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw", "xprv9uHRZZhk6KAJC1avXpDAp4MDc3sQKNxDiPvvkX8Br5ngLNv1TxvUxt4cV1rGL5hj6KCesnDYUhd7oWgT11eZG7XnxHrnYeSvkzY7d2bhkJ7"},
		{"m/0H/1", "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ", "xprv9wTYmMFdV23N2TdNG573QoEsfRrWKQgWeibmLntzniatZvR9BmLnvSxqu53Kw1UmYPxLgboyZQaXwTCg8MSY3H2EU4pWcQDnRnrVA1xe8fs"},
		{"m/0H/1/2H", "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5", "xprv9z4pot5VBttmtdRTWfWQmoH1taj2axGVzFqSb8C9xaxKymcFzXBDptWmT7FwuEzG3ryjH4ktypQSAewRiNMjANTtpgP4mLTj34bhnZX7UiM"},
		{"m/0H/1/2H/2", "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV", "xprvA2JDeKCSNNZky6uBCviVfJSKyQ1mDYahRjijr5idH2WwLsEd4Hsb2Tyh8RfQMuPh7f7RtyzTtdrbdqqsunu5Mm3wDvUAKRHSC34sJ7in334"},
		{"m/0H/1/2H/2/1000000000", "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy", "xprvA41z7zogVVwxVSgdKUHDy1SKmdb533PjDz7J6N6mV6uS3ze1ai8FHa8kmHScGpWmj4WggLyQjgPie1rFSruoUihUZREPSL39UNdE3BBDu76"},
	}},
	{"fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542", [][3]string{
		{"m", "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB", "xprv9s21ZrQH143K31xYSDQpPDxsXRTUcvj2iNHm5NUtrGiGG5e2DtALGdso3pGz6ssrdK4PFmM8NSpSBHNqPqm55Qn3LqFtT2emdEXVYsCzC2U"},
		{"m/0", "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH", "xprv9vHkqa6EV4sPZHYqZznhT2NPtPCjKuDKGY38FBWLvgaDx45zo9WQRUT3dKYnjwih2yJD9mkrocEZXo1ex8G81dwSM1fwqWpWkeS3v86pgKt"},
		{"m/0/2147483647H", "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a", "xprv9wSp6B7kry3Vj9m1zSnLvN3xH8RdsPP1Mh7fAaR7aRLcQMKTR2vidYEeEg2mUCTAwCd6vnxVrcjfy2kRgVsFawNzmjuHc2YmYRmagcEPdU9"},
		{"m/0/2147483647H/1", "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon", "xprv9zFnWC6h2cLgpmSA46vutJzBcfJ8yaJGg8cX1e5StJh45BBciYTRXSd25UEPVuesF9yog62tGAQtHjXajPPdbRCHuWS6T8XA2ECKADdw4Ef"},
		{"m/0/2147483647H/1/2147483646H", "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL", "xprvA1RpRA33e1JQ7ifknakTFpgNXPmW2YvmhqLQYMmrj4xJXXWYpDPS3xz7iAxn8L39njGVyuoseXzU6rcxFLJ8HFsTjSyQbLYnMpCqE2VbFWc"},
		{"m/0/2147483647H/1/2147483646H/2", "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt", "xprvA2nrNbFZABcdryreWet9Ea4LvTJcGsqrMzxHx98MMrotbir7yrKCEXw7nadnHM8Dq38EGfSh6dqA9QWTyefMLEcBYJUuekgW4BYPJcr9E7j"},
	}},
	{"4b381541583be4423346c643850da4b320e46a87ae3d2a4e6da11eba819cd4acba45d239319ac14f863b8d5ab5a0d0c64d2e8a1e7d1457df2e5a3c51c73235be", [][3]string{
		{"m", "xpub661MyMwAqRbcEZVB4dScxMAdx6d4nFc9nvyvH3v4gJL378CSRZiYmhRoP7mBy6gSPSCYk6SzXPTf3ND1cZAceL7SfJ1Z3GC8vBgp2epUt13", "xprv9s21ZrQH143K25QhxbucbDDuQ4naNntJRi4KUfWT7xo4EKsHt2QJDu7KXp1A3u7Bi1j8ph3EGsZ9Xvz9dGuVrtHHs7pXeTzjuxBrCmmhgC6"},
		{"m/0H", "xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y", "xprv9uPDJpEQgRQfDcW7BkF7eTya6RPxXeJCqCJGHuCJ4GiRVLzkTXBAJMu2qaMWPrS7AANYqdq6vcBcBUdJCVVFceUvJFjaPdGZ2y9WACViL4L"},
	}},
}

// Every chain of the BIP's vectors, privately from the master key, and
// where the last step is not hardened also publicly from the parent's xpub;
// each serialization parses back to itself.
func TestVectors(t *testing.T) {
	for n, v := range vectors {
		seed, _ := hex.DecodeString(v.seed)
		m, err := NewMaster(seed)
		if err != nil {
			t.Fatal(err)
		}
		var parentPub *Key
		for _, c := range v.chains {
			k, err := m.Derive(c[0])
			if err != nil {
				t.Fatalf("vector %d %s: %v", n+1, c[0], err)
			}
			if got := k.String(); got != c[2] {
				t.Errorf("vector %d %s: xprv differs", n+1, c[0])
			}
			if got := k.Neuter().String(); got != c[1] {
				t.Errorf("vector %d %s: xpub %s, want %s", n+1, c[0], got, c[1])
			}
			if parentPub != nil && !strings.HasSuffix(c[0], "H") {
				idx, _ := ParsePath(c[0])
				pk, err := parentPub.Child(idx[len(idx)-1])
				if err != nil || pk.String() != c[1] {
					t.Errorf("vector %d %s from the parent's xpub: %v, %v", n+1, c[0], pk, err)
				}
			}
			for _, s := range []string{c[1], c[2]} {
				p, err := Parse(s)
				if err != nil || p.String() != s {
					t.Errorf("vector %d %s: Parse round trip: %v", n+1, c[0], err)
				}
			}
			parentPub = k.Neuter()
		}
	}
}

// The root keys of BIP39's reference vectors (the seed of each mnemonic
// with the passphrase "TREZOR").
func TestBIP39VectorRoots(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bips", "bip39-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string][][4]string
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	for _, v := range all["english"] {
		seed, _ := hex.DecodeString(v[2])
		m, err := NewMaster(seed)
		if err != nil {
			t.Fatal(err)
		}
		if m.String() != v[3] {
			t.Errorf("the root key of %q's seed differs from the vector's", v[1])
		}
	}
}

// Skycoin's BIP32 golden file (testdata/skycoin/seed-bip32-0000.golden):
// the children of its base path, with their keys and Skycoin addresses.
func TestSkycoinBIP32Golden(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "skycoin", "seed-bip32-0000.golden"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Seed     []byte `json:"seed"`
		BasePath string `json:"base_path"`
		Keys     []struct {
			Path, XPriv, XPub, Address, Secret, Public string
			Depth                                      int
			ChildNumber                                uint32 `json:"child_number"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	m, err := NewMaster(g.Seed)
	if err != nil {
		t.Fatal(err)
	}
	base, err := m.Derive(g.BasePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range g.Keys {
		k, err := m.Derive(want.Path)
		if err != nil {
			t.Fatalf("%s: %v", want.Path, err)
		}
		if k.String() != want.XPriv || k.Neuter().String() != want.XPub || k.Depth() != want.Depth || k.ChildNumber() != want.ChildNumber {
			t.Errorf("%s: the extended keys differ from the golden file's", want.Path)
		}
		if hex.EncodeToString(k.PublicKey()) != want.Public {
			t.Errorf("%s: public key %x, want %s", want.Path, k.PublicKey(), want.Public)
		}
		priv := k.PrivateKey()
		var sec [32]byte
		priv.Key.PutBytes(&sec)
		if hex.EncodeToString(sec[:]) != want.Secret {
			t.Errorf("%s: the secret differs from the golden file's", want.Path)
		}
		addr, err := identity.AddressFromPublicKey(k.PublicKey())
		if err != nil || addr.String() != want.Address {
			t.Errorf("%s: address %s, want %s", want.Path, addr, want.Address)
		}
		// The same child from the base path's public key.
		pub, err := base.Neuter().Child(want.ChildNumber)
		if err != nil || pub.String() != want.XPub {
			t.Errorf("%s from the base xpub: %v", want.Path, err)
		}
	}
}

// btcutil's hdkeychain, a second implementation, agrees on random seeds
// and paths.
func TestAgainstHDKeychain(t *testing.T) {
	for range 20 {
		seed := make([]byte, 32)
		rand.Read(seed)
		path := "m"
		var idx []uint32
		for range 4 {
			var b [4]byte
			rand.Read(b[:])
			i := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			idx = append(idx, i)
			if i >= Hardened {
				path += fmt.Sprintf("/%d'", i-Hardened)
			} else {
				path += fmt.Sprintf("/%d", i)
			}
		}
		m, err := NewMaster(seed)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := m.Derive(path)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range idx {
			if theirs, err = theirs.Derive(i); err != nil {
				t.Fatal(err)
			}
		}
		if ours.String() != theirs.String() {
			t.Errorf("%s: hdkeychain derives another key", path)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, n := range []int{0, 15, 65} {
		if _, err := NewMaster(make([]byte, n)); !errors.Is(err, ErrSeedLength) {
			t.Errorf("seed of %d bytes: %v", n, err)
		}
	}
	m, _ := NewMaster(make([]byte, 32))
	if _, err := m.Neuter().Child(Hardened); !errors.Is(err, ErrHardenedFromPublic) {
		t.Errorf("hardened from public: %v", err)
	}
	for _, p := range []string{"m/", "m/x", "m/01", "m/2147483648", "m/1''", "m//1", "n/1", "m/-1"} {
		if _, err := ParsePath(p); !errors.Is(err, ErrPath) {
			t.Errorf("ParsePath(%q): %v", p, err)
		}
	}
	if got, err := ParsePath("m/44'/8000h/0H/1/2147483647"); err != nil || fmt.Sprint(got) != fmt.Sprint([]uint32{Hardened + 44, Hardened + 8000, Hardened, 1, 2147483647}) {
		t.Errorf("ParsePath: %v %v", got, err)
	}
	for _, p := range []string{"m", "m/44'/8000'/0'/1/2147483647", "m/0'/0"} {
		idx, err := ParsePath(p)
		if err != nil || FormatPath(idx) != p {
			t.Errorf("FormatPath(ParsePath(%q)) = %q (%v)", p, FormatPath(idx), err)
		}
	}
	child, _ := m.Derive("0")
	if _, err := child.Derive("m/0"); !errors.Is(err, ErrPath) {
		t.Errorf("an absolute path from a child: %v", err)
	}
	good := vectors[0].chains[0][2]
	for _, s := range []string{"", "xprv", good[:len(good)-1] + "j", vectors[0].chains[0][1][:100]} {
		if _, err := Parse(s); !errors.Is(err, ErrSerialization) {
			t.Errorf("Parse(%.20q...): %v", s, err)
		} else if strings.Contains(err.Error(), good[4:20]) {
			t.Errorf("Parse's error quotes the key")
		}
	}
}

// Parse never panics and whatever it accepts serializes back to its input.
func FuzzParse(f *testing.F) {
	for _, v := range vectors {
		for _, c := range v.chains {
			f.Add(c[1])
			f.Add(c[2])
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("Parse(%q) serializes to %q", s, k.String())
		}
	})
}
