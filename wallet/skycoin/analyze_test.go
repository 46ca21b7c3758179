package skycoin

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	bolt "go.etcd.io/bbolt"

	"github.com/skyfleet/skyfleet/internal/boltdb"
	"github.com/skyfleet/skyfleet/services/identity"
)

// request is a signing request: a transaction, the outputs it spends as
// the host describes them, the head time, and which addresses are the
// wallet's.
type request struct {
	tx    *Transaction
	spent []Spent
	head  uint64
	mine  map[identity.Address]string
}

func (r *request) ours(a identity.Address) (string, bool) {
	p, ok := r.mine[a]
	return p, ok
}

func (r *request) analyze() (Summary, error) { return Analyze(r.tx, r.spent, r.head, r.ours) }

// clone copies r deeply enough for a test to tamper with the copy.
func (r *request) clone() *request {
	c := &request{
		tx: &Transaction{
			Type: r.tx.Type,
			Sigs: slices.Clone(r.tx.Sigs),
			In:   slices.Clone(r.tx.In),
			Out:  slices.Clone(r.tx.Out),
		},
		spent: slices.Clone(r.spent),
		head:  r.head,
		mine:  map[identity.Address]string{},
	}
	for a, p := range r.mine {
		c.mine[a] = p
	}
	return c
}

// rehash makes every input the UxID of the output described for it, so
// that a tampered body reaches the rule under test.
func (r *request) rehash() {
	for i, s := range r.spent {
		r.tx.In[i] = UxID(s.Source, s.Output)
	}
}

// Block 1's time on Skycoin's mainnet (block-seq-1.golden), used as the
// creation time of the outputs the test wallet spends.
const block1Time = 1427926392

// fixture is a request to spend two outputs held by the first two keys
// of Skycoin's seed-0000.golden: 10 SKY with 100 hours and 2.5 SKY with 50
// hours, both created at block 1's time, spent a day later. It pays 7 SKY
// and 200 hours to the mainnet genesis address and 5.5 SKY and 205 hours
// back to the seed's third key. In a day the outputs earn 240 and 60 coin
// hours (coin.UxOut.CoinHours: 10·86400/3600, and (2·86400 +
// 500000·86400/10⁶)/3600), so the inputs hold 450 hours, and the 45 hours
// burned are exactly Skycoin's minimum, ⌈450/10⌉.
func fixture(t testing.TB) (*request, []*secp256k1.PrivateKey, golden) {
	t.Helper()
	g := load(t, "seed-0000.golden")
	keys, err := DeterministicKeys(g.Seed, 3)
	if err != nil {
		t.Fatal(err)
	}
	addr := make([]identity.Address, 3)
	for i := range addr {
		if addr[i], err = identity.ParseAddress(g.Keys[i].Address); err != nil {
			t.Fatal(err)
		}
	}
	var genesis struct{ Txn apiTxn }
	readJSON(t, "genesis-transaction.golden", &genesis)
	var block struct {
		Body struct{ Txns []apiTxn } `json:"body"`
	}
	readJSON(t, "block-seq-1.golden", &block)
	other, err := identity.ParseAddress(genesis.Txn.Outputs[0].Dst)
	if err != nil {
		t.Fatal(err)
	}
	r := &request{
		spent: []Spent{
			{Source: hash32(t, block.Body.Txns[0].TxID), Output: Output{Address: addr[0], Coins: 10 * DropletsPerCoin, Hours: 100}, Created: block1Time},
			{Source: hash32(t, genesis.Txn.TxID), Output: Output{Address: addr[1], Coins: 2_500_000, Hours: 50}, Created: block1Time},
		},
		head: block1Time + 86400,
		mine: map[identity.Address]string{addr[0]: "skycoin/0", addr[1]: "skycoin/1", addr[2]: "skycoin/2"},
	}
	r.tx = &Transaction{
		In: make([][32]byte, 2),
		Out: []Output{
			{Address: other, Coins: 7 * DropletsPerCoin, Hours: 200},
			{Address: addr[2], Coins: 5_500_000, Hours: 205},
		},
	}
	r.rehash()
	return r, keys, g
}

// The fixture's request is accepted and summarised as Skycoin counts it;
// signed with the seed's keys, each input's signature recovers the
// address Skycoin's golden file gives for the key (the rule of coin
// Transaction.VerifyInputSignatures), and the signed transaction,
// encoded and decoded, is still accepted.
func TestAnalyzeAndSign(t *testing.T) {
	r, keys, g := fixture(t)
	s, err := r.analyze()
	if err != nil {
		t.Fatal(err)
	}
	if s.CoinsIn != 12_500_000 || s.CoinsOut != 12_500_000 || s.Sent != 7_000_000 {
		t.Errorf("coins in %d, out %d, sent %d", s.CoinsIn, s.CoinsOut, s.Sent)
	}
	if s.HoursIn != 450 || s.HoursOut != 405 || s.FeeHours != 45 || s.RequiredFee != 45 {
		t.Errorf("hours in %d, out %d, fee %d, required %d", s.HoursIn, s.HoursOut, s.FeeHours, s.RequiredFee)
	}
	if s.Inputs[0].Hours != 340 || s.Inputs[0].Accrued != 240 || s.Inputs[1].Hours != 110 || s.Inputs[1].Accrued != 60 {
		t.Errorf("input hours %+v", s.Inputs)
	}
	for i, in := range s.Inputs {
		if in.Address.String() != g.Keys[i].Address || in.Path != r.mine[in.Address] || in.UxID != r.tx.In[i] {
			t.Errorf("input %d: %+v", i, in)
		}
	}
	if s.Outputs[0].Change || !s.Outputs[1].Change || s.Outputs[1].Path != "skycoin/2" || s.Outputs[1].Address.String() != g.Keys[2].Address {
		t.Errorf("outputs %+v", s.Outputs)
	}
	if !s.HoursClaimed || s.HoursUnknown || len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "claims") {
		t.Errorf("claimed %v, unknown %v, warnings %q", s.HoursClaimed, s.HoursUnknown, s.Warnings)
	}

	for i := range r.tx.In {
		if err := r.tx.SignInput(i, keys[i]); err != nil {
			t.Fatal(err)
		}
		if a, err := r.tx.InputSigner(i); err != nil || a.String() != g.Keys[i].Address {
			t.Errorf("input %d signed by %v (%v), want %s", i, a, err, g.Keys[i].Address)
		}
	}
	back, err := DecodeTransaction(r.tx.Encode())
	if err != nil {
		t.Fatal(err)
	}
	r.tx = back
	if _, err := r.analyze(); err != nil {
		t.Errorf("the signed transaction: %v", err)
	}
}

// Without creation times only the outputs' own hours count, and the
// summary says the fee is a lower bound.
func TestAnalyzeWithoutTimes(t *testing.T) {
	r, _, _ := fixture(t)
	for i := range r.spent {
		r.spent[i].Created = 0
	}
	r.tx.Out[0].Hours, r.tx.Out[1].Hours = 100, 35
	s, err := r.analyze()
	if err != nil {
		t.Fatal(err)
	}
	if s.HoursIn != 150 || s.FeeHours != 15 || s.RequiredFee != 15 || s.HoursClaimed || !s.HoursUnknown {
		t.Errorf("hours in %d, fee %d, required %d, claimed %v, unknown %v", s.HoursIn, s.FeeHours, s.RequiredFee, s.HoursClaimed, s.HoursUnknown)
	}
	if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "2 of 2 inputs came without their block time") {
		t.Errorf("warnings %q", s.Warnings)
	}
}

func TestAnalyzeWarnings(t *testing.T) {
	r, _, g := fixture(t)
	// Change back to input 0's address.
	r.tx.Out[1].Address = r.spent[0].Output.Address
	s, err := r.analyze()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(s.Warnings, func(w string) bool {
		return strings.Contains(w, "output 1 pays back to the address input 0 spends from")
	}) {
		t.Errorf("no address-reuse warning: %q", s.Warnings)
	}
	// Change to someone else's address.
	r, _, _ = fixture(t)
	r.tx.Out[1].Address, _ = identity.ParseAddress(g.Keys[5].Address)
	if s, err = r.analyze(); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(s.Warnings, func(w string) bool { return strings.HasPrefix(w, "no change") }) || s.Sent != s.CoinsOut {
		t.Errorf("no change: sent %d of %d, warnings %q", s.Sent, s.CoinsOut, s.Warnings)
	}
}

// Each rule refuses a tampered copy of the fixture, naming the input or
// output, and no refusal carries a key.
func TestAnalyzeRefuses(t *testing.T) {
	base, _, g := fixture(t)
	const maxCoins = math.MaxUint64 - math.MaxUint64%CoinStep
	cases := []struct {
		name string
		f    func(r *request)
		want string
	}{
		{"type", func(r *request) { r.tx.Type = 1 }, "type 1"},
		{"no inputs", func(r *request) { r.tx.In, r.spent = nil, nil }, "0 inputs"},
		{"no outputs", func(r *request) { r.tx.Out = nil }, "0 outputs"},
		{"too many inputs", func(r *request) {
			for len(r.tx.In) <= MaxInputs {
				r.tx.In = append(r.tx.In, [32]byte{byte(len(r.tx.In))})
				r.spent = append(r.spent, r.spent[0])
			}
		}, "65 inputs"},
		{"too many outputs", func(r *request) {
			for len(r.tx.Out) <= MaxOutputs {
				r.tx.Out = append(r.tx.Out, Output{Address: r.tx.Out[0].Address, Coins: CoinStep, Hours: uint64(len(r.tx.Out))})
			}
		}, "65 outputs"},
		{"signature count", func(r *request) { r.tx.Sigs = make([][sigSize]byte, 1) }, "1 signatures for 2 inputs"},
		{"spent count", func(r *request) { r.spent = r.spent[:1] }, "1 spent outputs given for 2 inputs"},
		{"duplicate input", func(r *request) { r.tx.In[1], r.spent[1] = r.tx.In[0], r.spent[0] }, "input 1 spends the same output as input 0"},
		{"body coins", func(r *request) { r.spent[1].Output.Coins += CoinStep }, "input 1: the output the host describes"},
		{"body hours", func(r *request) { r.spent[0].Output.Hours++ }, "input 0: the output the host describes"},
		{"body source", func(r *request) { r.spent[0].Source[31] ^= 1 }, "input 0: the output the host describes"},
		{"not the wallet's", func(r *request) { delete(r.mine, r.spent[1].Output.Address) }, "input 1 spends from " + g.Keys[1].Address},
		{"null address", func(r *request) { r.tx.Out[0].Address = identity.Address{} }, "output 0 pays the null address"},
		{"zero coins", func(r *request) { r.tx.Out = append(r.tx.Out, Output{Address: r.tx.Out[0].Address}) }, "output 2 pays no coins"},
		{"decimals", func(r *request) { r.tx.Out[0].Coins++; r.tx.Out[1].Coins-- }, "output 0 pays 7000001 droplets"},
		{"duplicate output", func(r *request) {
			half := Output{Address: r.tx.Out[0].Address, Coins: 3_500_000, Hours: 100}
			r.tx.Out = []Output{half, half, r.tx.Out[1]}
		}, "output 1 repeats output 0"},
		{"output coins overflow", func(r *request) { r.tx.Out[0].Coins = maxCoins }, "output coins overflow at output 1"},
		{"output hours overflow", func(r *request) { r.tx.Out[0].Hours = math.MaxUint64 }, "output hours overflow at output 1"},
		{"input coins overflow", func(r *request) { r.spent[0].Output.Coins = maxCoins; r.rehash() }, "input coins overflow at input 1"},
		{"input hours overflow", func(r *request) {
			r.spent[0].Output.Hours, r.spent[0].Created = math.MaxUint64, 0
			r.rehash()
		}, "input hours overflow at input 1"},
		{"earned hours overflow", func(r *request) { r.spent[0].Output.Hours = math.MaxUint64 - 100; r.rehash() }, "input 0: its coin hours at the head time: earned coin hours overflow"},
		{"coin-seconds overflow", func(r *request) {
			r.spent[1].Output.Coins, r.spent[1].Created = maxCoins, 1
			r.rehash()
		}, "input 1: its coin hours at the head time: coin-seconds overflow"},
		{"coins destroyed", func(r *request) { r.tx.Out[1].Coins -= CoinStep }, "the outputs pay 12499000 droplets and the inputs hold 12500000"},
		{"coins created", func(r *request) { r.tx.Out[1].Coins += CoinStep }, "the outputs pay 12501000 droplets and the inputs hold 12500000"},
		{"hours created", func(r *request) { r.tx.Out[1].Hours = 251 }, "the outputs pay 451 coin hours, more than the inputs' 450"},
		{"no fee", func(r *request) { r.tx.Out[1].Hours = 250 }, "burns no coin hours"},
		{"fee too low", func(r *request) { r.tx.Out[1].Hours = 206 }, "burns 44 coin hours of the inputs' 450; Skycoin requires at least 1/10 of them, 45"},
	}
	for _, c := range cases {
		r := base.clone()
		c.f(r)
		_, err := r.analyze()
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want a refusal containing %q", c.name, err, c.want)
			continue
		}
		for _, k := range g.Keys {
			if strings.Contains(err.Error(), k.Secret) {
				t.Errorf("%s: the refusal carries a secret key", c.name)
			}
		}
	}
	if _, err := Analyze(nil, nil, 0, base.ours); !errors.Is(err, ErrRefused) {
		t.Errorf("nil transaction: %v", err)
	}
	// The untampered request is still accepted: no case changed it.
	if _, err := base.analyze(); err != nil {
		t.Errorf("the fixture: %v", err)
	}
}

// CoinHours is Skycoin's rule where the earned hours are not a whole
// number or the clock runs backwards.
func TestCoinHours(t *testing.T) {
	cases := []struct {
		out            Output
		created, now   uint64
		want           uint64
		overflowWanted bool
	}{
		{Output{Coins: 1_000_000, Hours: 7}, 100, 100 + 3599, 7, false},     // not yet an hour
		{Output{Coins: 1_000_000, Hours: 7}, 100, 100 + 3600, 8, false},     // one coin hour
		{Output{Coins: 1_500_000}, 0, 2400, 1, false},                       // 1.5 coins · 2400 s = 3600 coin-seconds
		{Output{Coins: 999_999}, 0, 3600, 0, false},                         // droplet-seconds round down: 3599.9964
		{Output{Coins: 999_999}, 0, 3601, 1, false},                         // 3600.9963 coin-seconds
		{Output{Coins: 5 * 1_000_000, Hours: 9}, 500, 400, 9, false},        // now before creation: no accrual
		{Output{Coins: math.MaxUint64, Hours: 0}, 0, 1 << 20, 0, true},      // whole coin-seconds overflow
		{Output{Coins: 1_000_000, Hours: math.MaxUint64}, 0, 3600, 0, true}, // hours overflow
		{Output{Coins: 1_000_000, Hours: math.MaxUint64}, 0, 3599, math.MaxUint64, false},
	}
	for i, c := range cases {
		got, err := CoinHours(c.out, c.created, c.now)
		if (err != nil) != c.overflowWanted || got != c.want {
			t.Errorf("case %d: %d (%v), want %d (overflow %v)", i, got, err, c.want, c.overflowWanted)
		}
	}
	for _, c := range []struct{ hours, fee uint64 }{{0, 0}, {1, 1}, {10, 1}, {11, 2}, {450, 45}, {451, 46}} {
		if f := RequiredFee(c.hours); f != c.fee {
			t.Errorf("RequiredFee(%d) = %d, want %d", c.hours, f, c.fee)
		}
	}
}

// chainTx is a transaction of Skycoin's mainnet with the outputs it
// spends, as blockchain-180.db records them.
type chainTx struct {
	seq   uint64 // its block
	fee   uint64 // its block's fee (header)
	head  uint64 // the previous block's time: the head time it was checked at
	tx    *Transaction
	spent []Spent
}

// mainnetChain reads Skycoin's testdata/skycoin/blockchain-180.db (mainnet
// blocks 0 to 180, Skycoin's own bbolt layout: "block_tree" maps a block
// sequence, big-endian, to its hash; "blocks" a hash to the encoded
// coin.Block, a 124-byte header [version u32, time u64, seq u64, fee u64,
// previous hash, body hash, UxHash] and its transactions; the history
// "uxouts" bucket maps a UxID to its coin.UxOut, head [time u64, block
// u64] then body [source, address, coins, hours]) and returns the
// transactions of blocks 1 to 180, one list per block.
func mainnetChain(t testing.TB) [][]chainTx {
	t.Helper()
	// A copy, opened as every store of the module opens bbolt
	// (internal/boltdb): the file in testdata stays as Skycoin made it.
	src, err := os.ReadFile(filepath.Join("..", "..", "testdata", "skycoin", "blockchain-180.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "blockchain-180.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	db, rec, err := boltdb.Open(path, nil)
	if err != nil || rec != nil {
		t.Fatalf("blockchain-180.db: %v (%v)", err, rec)
	}
	defer db.Close()
	var blocks [][]chainTx
	err = db.View(func(btx *bolt.Tx) error {
		tree, bb, ux := btx.Bucket([]byte("block_tree")), btx.Bucket([]byte("blocks")), btx.Bucket([]byte("uxouts"))
		if tree == nil || bb == nil || ux == nil {
			return errors.New("buckets missing")
		}
		var prevTime uint64
		for seq := uint64(0); seq <= 180; seq++ {
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], seq)
			v := tree.Get(k[:])
			if len(v) < 4+64 || binary.LittleEndian.Uint32(v) != 1 {
				return errors.New("block tree entry")
			}
			b := bb.Get(v[4:36])
			if len(b) < 124+4 || binary.LittleEndian.Uint64(b[12:]) != seq {
				return errors.New("block")
			}
			btime, fee := binary.LittleEndian.Uint64(b[4:]), binary.LittleEndian.Uint64(b[20:])
			if seq == 0 { // the genesis block creates its output with no transaction input
				prevTime = btime
				continue
			}
			var list []chainTx
			p := b[124:]
			n := binary.LittleEndian.Uint32(p)
			p = p[4:]
			for range n {
				l := int(binary.LittleEndian.Uint32(p))
				tx, err := DecodeTransaction(p[:l])
				if err != nil {
					return err
				}
				p = p[l:]
				c := chainTx{seq: seq, fee: fee, head: prevTime, tx: tx}
				for _, in := range tx.In {
					u := ux.Get(in[:])
					if len(u) < 16+32+outputSize {
						return errors.New("uxout missing")
					}
					var s Spent
					s.Created = binary.LittleEndian.Uint64(u)
					copy(s.Source[:], u[16:48])
					s.Output.Address.Version = u[48]
					copy(s.Output.Address.Key[:], u[49:69])
					s.Output.Coins = binary.LittleEndian.Uint64(u[69:])
					s.Output.Hours = binary.LittleEndian.Uint64(u[77:])
					c.spent = append(c.spent, s)
				}
				list = append(list, c)
			}
			if len(p) != 0 {
				return errors.New("bytes after the transactions")
			}
			blocks = append(blocks, list)
			prevTime = btime
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return blocks
}

// Every transaction of mainnet blocks 1 to 180, analysed as if the wallet
// held its inputs: each input's described body matches its UxID, and the
// hours burned, counted with the coin hours the inputs earned from their
// blocks' times to the previous block's (CoinHours), add up to each
// block's fee as Skycoin recorded it. Skycoin's rules tightened after
// 2015: Analyze refuses block 1's 100 outputs (over MaxOutputs) and the
// transactions that burned no hours, and accepts the 143 others, 88 of
// which spend outputs that earned hours.
func TestAnalyzeMainnetChain(t *testing.T) {
	accepted, earned, txs := 0, 0, 0
	for _, block := range mainnetChain(t) {
		var fee uint64
		for _, c := range block {
			txs++
			mine := map[identity.Address]string{}
			for _, s := range c.spent {
				mine[s.Output.Address] = "held"
			}
			r := &request{tx: c.tx, spent: c.spent, head: c.head, mine: mine}
			s, err := r.analyze()
			if err == nil {
				accepted++
				if s.HoursClaimed {
					earned++
				}
				fee += s.FeeHours
				continue
			}
			if !strings.Contains(err.Error(), "burns no coin hours") && !(c.seq == 1 && strings.Contains(err.Error(), "100 outputs")) {
				t.Errorf("block %d, %x: %v", c.seq, c.tx.ID(), err)
				continue
			}
			// Count its fee as Skycoin did.
			for _, sp := range c.spent {
				h, err := CoinHours(sp.Output, sp.Created, c.head)
				if err != nil {
					t.Fatal(err)
				}
				fee += h
			}
			for _, o := range c.tx.Out {
				fee -= o.Hours
			}
		}
		if fee != block[0].fee {
			t.Errorf("block %d: fees %d, Skycoin's header says %d", block[0].seq, fee, block[0].fee)
		}
	}
	if txs != 180 || accepted != 143 || earned != 88 {
		t.Errorf("%d transactions, %d accepted, %d with earned hours; want 180, 143, 88", txs, accepted, earned)
	}
}

// fuzzSpentSize is one spent output in FuzzAnalyze's input: source,
// address, coins, hours, creation time.
const fuzzSpentSize = 32 + outputSize + 8

func fuzzSpent(s Spent) []byte {
	b := append([]byte(nil), s.Source[:]...)
	b = append(b, s.Output.Address.Version)
	b = append(b, s.Output.Address.Key[:]...)
	b = binary.LittleEndian.AppendUint64(b, s.Output.Coins)
	b = binary.LittleEndian.AppendUint64(b, s.Output.Hours)
	return binary.LittleEndian.AppendUint64(b, s.Created)
}

func fuzzOutputs(outs []Output) []byte {
	var b []byte
	for _, o := range outs {
		b = append(b, o.Address.Version)
		b = append(b, o.Address.Key[:]...)
		b = binary.LittleEndian.AppendUint64(b, o.Coins)
		b = binary.LittleEndian.AppendUint64(b, o.Hours)
	}
	return b
}

// FuzzAnalyze builds a request from the fuzzer's bytes (spent outputs,
// outputs, head time; the inputs are the spent outputs' UxIDs unless
// tamper picks one to break; an address is the wallet's when its first
// key byte is even) and checks that Analyze never panics, refuses only
// with ErrRefused, and that what it accepts obeys Skycoin's rules: coins
// in equal coins out, every output's coins a nonzero multiple of CoinStep,
// the fee nonzero and at least RequiredFee(HoursIn), each input's hours
// CoinHours of its body.
func FuzzAnalyze(f *testing.F) {
	r, _, _ := fixture(f)
	var sp []byte
	for _, s := range r.spent {
		sp = append(sp, fuzzSpent(s)...)
	}
	f.Add(sp, fuzzOutputs(r.tx.Out), r.head, uint8(0))
	f.Add(sp, fuzzOutputs(r.tx.Out), r.head, uint8(2)) // the UxID of input 1 broken
	f.Add(sp, fuzzOutputs(r.tx.Out[:1]), uint64(0), uint8(0))
	for _, block := range mainnetChain(f)[100:110] {
		for _, c := range block {
			var b []byte
			for _, s := range c.spent {
				b = append(b, fuzzSpent(s)...)
			}
			f.Add(b, fuzzOutputs(c.tx.Out), c.head, uint8(0))
		}
	}
	f.Fuzz(func(t *testing.T, spentBytes, outBytes []byte, head uint64, tamper uint8) {
		if len(spentBytes) > (MaxInputs+2)*fuzzSpentSize || len(outBytes) > (MaxOutputs+2)*outputSize {
			return
		}
		tx := &Transaction{}
		var spent []Spent
		for p := spentBytes; len(p) >= fuzzSpentSize; p = p[fuzzSpentSize:] {
			var s Spent
			copy(s.Source[:], p)
			s.Output.Address.Version = p[32]
			copy(s.Output.Address.Key[:], p[33:53])
			s.Output.Coins = binary.LittleEndian.Uint64(p[53:])
			s.Output.Hours = binary.LittleEndian.Uint64(p[61:])
			s.Created = binary.LittleEndian.Uint64(p[69:])
			spent = append(spent, s)
			tx.In = append(tx.In, UxID(s.Source, s.Output))
		}
		if i := int(tamper) - 1; i >= 0 && i < len(tx.In) {
			tx.In[i][0] ^= 1
		}
		for p := outBytes; len(p) >= outputSize; p = p[outputSize:] {
			var o Output
			o.Address.Version = p[0]
			copy(o.Address.Key[:], p[1:21])
			o.Coins = binary.LittleEndian.Uint64(p[21:])
			o.Hours = binary.LittleEndian.Uint64(p[29:])
			tx.Out = append(tx.Out, o)
		}
		ours := func(a identity.Address) (string, bool) { return hex.EncodeToString(a.Key[:1]), a.Key[0]%2 == 0 }
		s, err := Analyze(tx, spent, head, ours)
		if err != nil {
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("an error that is not a refusal: %v", err)
			}
			return
		}
		if tamper != 0 && int(tamper) <= len(tx.In) {
			t.Fatal("a broken UxID accepted")
		}
		if s.CoinsIn != s.CoinsOut || s.FeeHours != s.HoursIn-s.HoursOut || s.FeeHours == 0 || s.FeeHours < RequiredFee(s.HoursIn) {
			t.Fatalf("accepted: %+v", s)
		}
		var coins, change uint64
		for _, o := range s.Outputs {
			if o.Coins == 0 || o.Coins%CoinStep != 0 {
				t.Fatalf("accepted an output of %d droplets", o.Coins)
			}
			coins += o.Coins
			if o.Change {
				change += o.Coins
			}
		}
		if coins != s.CoinsOut || s.Sent+change != coins {
			t.Fatalf("output coins %d, sent %d, change %d, summary %d", coins, s.Sent, change, s.CoinsOut)
		}
		for i, in := range s.Inputs {
			want := spent[i].Output.Hours
			if spent[i].Created != 0 {
				want, _ = CoinHours(spent[i].Output, spent[i].Created, head)
			}
			if in.Hours != want || in.Accrued != want-spent[i].Output.Hours {
				t.Fatalf("input %d: hours %d, accrued %d, want %d", i, in.Hours, in.Accrued, want)
			}
		}
	})
}
