package main

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/services/wallet"
	"github.com/skyfleet/skyfleet/wallet/keystore"
)

// yes approves every question, with the PIN, and types words.
type yes struct{ words []string }

func (y *yes) Ask(_ context.Context, q wallet.Question) (wallet.Reply, error) {
	if q.Kind == wallet.KindWord {
		w := y.words[0]
		y.words = y.words[1:]
		return wallet.Reply{Approved: true, Text: []byte(w)}, nil
	}
	return wallet.Reply{Approved: true, PIN: []byte("2468")}, nil
}

// skyfleet wallet against a node's API (a Guard with the Signed route in
// front of the wallet, as the status service has): pair makes the host's
// key and prints the code the node pairs; setup restores; address and
// sign-message print what the wallet answered; a second computer without
// pairing is refused with the node's reason.
func TestWalletClient(t *testing.T) {
	svc, err := wallet.New(wallet.Config{Dir: t.TempDir(), Params: keystore.Params{Time: 1, Memory: 64, Threads: 1}},
		&yes{words: strings.Fields("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about")})
	if err != nil {
		t.Fatal(err)
	}
	node, _ := secp256k1.GeneratePrivateKey()
	g, err := apiauth.NewGuard(apiauth.Config{Node: node.PubKey().SerializeCompressed()})
	if err != nil {
		t.Fatal(err)
	}
	inner := svc.Handler()
	srv := httptest.NewServer(g.Handler([]apiauth.Route{{Pattern: "/wallet/", Access: apiauth.Signed,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.URL.Path = strings.TrimPrefix(r.URL.Path, "/wallet")
			r.Header.Set(wallet.HostHeader, hex.EncodeToString(apiauth.SignerKey(r)))
			inner.ServeHTTP(w, r)
		})}}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	key := filepath.Join(t.TempDir(), "cfg", "wallet-host.key")
	run := func(args ...string) (string, string, error) {
		out, errOut := fakeKeyIO(t, "", false, "")
		err := cmdWallet(append(args, "--node", host, "--key", key))
		return out.String(), errOut.String(), err
	}
	if _, _, err := run("status"); err == nil || !strings.Contains(err.Error(), "pair this computer first") {
		t.Errorf("status before any key: %v", err)
	}
	out, errOut, err := run("pair", "--name", "laptop")
	if err != nil || strings.TrimSpace(out) != "paired" || !strings.Contains(errOut, "pairing code: ") {
		t.Fatalf("pair: %v\n%s\n%s", err, out, errOut)
	}
	if _, _, err := run("setup", "--restore", "--words", "12"); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run("address", "m/84'/0'/0'/0/0"); err != nil || strings.TrimSpace(out) != "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" {
		t.Errorf("address: %v %q", err, out)
	}
	if out, _, err := run("sign-message", "--path", "m/84'/0'/0'/0/0", "hello"); err != nil || !strings.Contains(out, `"signature": "smp`) {
		t.Errorf("sign-message: %v %q", err, out)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	out2, errOut2 := fakeKeyIO(t, "", false, "")
	if err := cmdWallet([]string{"pair", "--node", host, "--key", other}); err != nil {
		t.Fatalf("a second computer's pair: %v %s %s", err, out2, errOut2)
	}
	if err := cmdWallet([]string{"lock", "--node", host, "--key", filepath.Join(t.TempDir(), "nokey")}); err == nil {
		t.Error("lock without a key")
	}
	if _, _, err := run("frobnicate"); err == nil || !strings.Contains(err.Error(), "unknown wallet command") {
		t.Errorf("an unknown command: %v", err)
	}
}
