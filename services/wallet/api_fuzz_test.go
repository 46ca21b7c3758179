package wallet

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/skyfleet/skyfleet/wallet/bip32"
	"github.com/skyfleet/skyfleet/wallet/bip39"
	"github.com/skyfleet/skyfleet/wallet/bitcoin/bitcointest"
)

// FuzzRequests sends outside bytes as the body of every host API path of
// a set-up, paired, unlocked wallet whose person rejects everything: no
// body may panic the service, hang it, or get anything but a JSON answer
// with 200 or a 4xx status; nothing is signed.
func FuzzRequests(f *testing.F) {
	m, _ := bip32.NewMaster(bip39.Seed(vectorMnemonic, ""))
	p, _, _ := bitcointest.Spend(m)
	b64, _ := p.B64Encode()
	for _, seed := range []any{
		SetupRequest{Words: 12}, SetupRequest{Words: 24, Restore: true}, UnlockRequest{Passphrase: "x"},
		AddressRequest{Path: "m/84'/0'/0'/0/1", Show: true}, AddressRequest{Path: "skycoin/3"},
		PSBTRequest{PSBT: b64}, PairRequest{Name: "laptop"},
		map[string]any{"tx": "00", "inputs": []any{map[string]any{"source": "00", "address": "x", "coins": 1}}},
		map[string]any{"path": "skycoin/0", "message": "hello"},
	} {
		b, _ := json.Marshal(seed)
		f.Add(b)
	}
	f.Add([]byte(`{"psbt": "cHNidP8BAAoCAAAAAAAAAAAAAA=="}`))
	f.Add([]byte(`{"words": 12} {"words": 24}`))
	f.Add([]byte(`{"path": "m/84'/0'/0'/0/1", "unknown": 1}`))
	fx := newFixture(f, 0)
	fx.pair()
	fx.restore(vectorMnemonic)
	// /unpair is left out: it would end the pairing the rest need.
	paths := []string{"/pair", "/setup", "/unlock", "/lock", "/address", "/sign/psbt", "/sign/skycoin", "/sign/message"}
	f.Fuzz(func(t *testing.T, body []byte) {
		fx.p.mu.Lock()
		fx.p.reject = func(Question) bool { return true }
		fx.p.mu.Unlock()
		for _, path := range paths {
			req := httptest.NewRequest("POST", path, bytes.NewReader(body))
			req.Header.Set(HostHeader, hostKey)
			w := httptest.NewRecorder()
			fx.h.ServeHTTP(w, req)
			if w.Code != 200 && (w.Code < 400 || w.Code > 499) {
				t.Fatalf("%s: status %d: %s", path, w.Code, w.Body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s: not JSON: %q", path, w.Body)
			}
		}
		if st := fx.s.Status(); st.Signed != 0 {
			t.Fatalf("signed with every question rejected: %+v", st)
		}
	})
}
