package wallet

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/wallet/bip32"
	"github.com/skyfleet/skyfleet/wallet/bip39"
	"github.com/skyfleet/skyfleet/wallet/bitcoin"
	"github.com/skyfleet/skyfleet/wallet/bitcoin/bitcointest"
	"github.com/skyfleet/skyfleet/wallet/skycoin"
)

// BenchmarkSign2Inputs times what the wallet does once a 2-input request
// is approved, against a baseline of two bare ECDSA signatures
// (identity.SignCompact) timed alternately in the same loop, and reports
// each one's time and the ratio: the PSBT (analysis, BIP143 and BIP341
// sighashes, an ECDSA and a BIP340 signature, each verified) and the Skycoin
// transaction (two keys of the deterministic chain walked from the seed,
// two signatures).
func BenchmarkSign2Inputs(b *testing.B) {
	seed := bip39.Seed(vectorMnemonic, "")
	m, _ := bip32.NewMaster(seed)
	k, _ := openKeys(mustEntropy(b), "")
	key, _, _ := k.private(Path{Scheme: SkycoinChain})
	hash := sha256.Sum256([]byte("baseline"))
	baseline := func() {
		for range 2 {
			if _, err := identity.SignCompact(key, hash[:]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("psbt", func(b *testing.B) {
		w := bitcoin.Wallet{Master: m}
		var tSign, tBase time.Duration
		n := 0
		for b.Loop() {
			p, _, err := bitcointest.Spend(m)
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if got, err := w.Sign(p, nil); err != nil || got != 2 {
				b.Fatal(got, err)
			}
			t1 := time.Now()
			baseline()
			tSign, tBase, n = tSign+t1.Sub(t0), tBase+time.Since(t1), n+1
		}
		ratio(b, tSign, tBase, n)
	})
	b.Run("skycoin", func(b *testing.B) {
		tx := &skycoin.Transaction{In: [][32]byte{{1}, {2}}, Out: []skycoin.Output{{Coins: 1e6, Hours: 1}}}
		paths := []Path{{Scheme: SkycoinChain, Index: 0}, {Scheme: SkycoinChain, Index: 1}}
		var tSign, tBase time.Duration
		n := 0
		for b.Loop() {
			t0 := time.Now()
			tx.Sigs = nil
			for i, p := range paths {
				key, _, err := k.private(p)
				if err != nil {
					b.Fatal(err)
				}
				if err := tx.SignInput(i, key); err != nil {
					b.Fatal(err)
				}
				key.Zero()
			}
			t1 := time.Now()
			baseline()
			tSign, tBase, n = tSign+t1.Sub(t0), tBase+time.Since(t1), n+1
		}
		ratio(b, tSign, tBase, n)
	})
}

func mustEntropy(b *testing.B) []byte {
	e, err := bip39.EntropyFromMnemonic(vectorMnemonic)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func ratio(b *testing.B, tSign, tBase time.Duration, n int) {
	if n == 0 || tBase == 0 {
		return
	}
	b.ReportMetric(float64(tSign.Microseconds())/float64(n), "sign-us/op")
	b.ReportMetric(float64(tBase.Microseconds())/float64(n), "2xecdsa-us/op")
	b.ReportMetric(float64(tSign)/float64(tBase), "sign/2xecdsa")
	b.Logf("%d runs: signing %v/op, two bare ECDSA signatures %v/op, ratio %.2f", n, tSign/time.Duration(n), tBase/time.Duration(n), float64(tSign)/float64(tBase))
}
