package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/wallet"
	"github.com/skyfleet/skyfleet/wallet/keystore"
)

// screenScript approves every question, types the PIN and the words.
type screenScript struct {
	mu     sync.Mutex
	words  []string
	titles []string
}

func (s *screenScript) Ask(_ context.Context, q wallet.Question) (wallet.Reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.titles = append(s.titles, q.Title)
	if q.Kind == wallet.KindWord {
		w := s.words[0]
		s.words = s.words[1:]
		return wallet.Reply{Approved: true, Text: []byte(w)}, nil
	}
	r := wallet.Reply{Approved: true}
	if q.PIN {
		r.PIN = []byte("2468")
	}
	return r, nil
}

// The host API end to end on the host: the status service's Guard and
// proxy in front of the wallet on its Unix socket, a host signing each
// request with its own key. Pairing binds that key; a forged wallet
// header from another key is overwritten by the proxy; the paired host
// restores a seed and gets BIP84's first address.
func TestWalletHostAPI(t *testing.T) {
	dir, err := os.MkdirTemp("", "sfw") // short: a socket path is at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "w.sock")
	screen := &screenScript{words: strings.Fields("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about")}
	svc, err := wallet.New(wallet.Config{Dir: filepath.Join(dir, "wallet"), Params: keystore.Params{Time: 1, Memory: 64, Threads: 1}}, screen)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listenRootOnly(sock, uint32(os.Getuid()))
	if err != nil {
		t.Fatal(err)
	}
	ws := &http.Server{Handler: svc.Handler()}
	go ws.Serve(ln)
	t.Cleanup(func() { ws.Close() })
	walletSocketPath = sock
	t.Cleanup(func() { walletSocketPath = walletSocket })

	node, _ := secp256k1.GeneratePrivateKey()
	h, err := statusHandler(t.TempDir(), hex.EncodeToString(node.PubKey().SerializeCompressed()), "", apiauth.MessagingConfig{}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	host, _ := secp256k1.GeneratePrivateKey()
	stranger, _ := secp256k1.GeneratePrivateKey()
	call := func(key *secp256k1.PrivateKey, method, path string, body any, forged string) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(b))
		if key != nil {
			if err := (apiauth.HostKey{Key: key}).Authorize(srv.Client(), req); err != nil {
				t.Fatal(err)
			}
		}
		if forged != "" {
			req.Header.Set(wallet.HostHeader, forged)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		out.ReadFrom(resp.Body)
		return resp.StatusCode, out.String()
	}
	if code, _ := call(nil, "POST", "/wallet/pair", wallet.PairRequest{Name: "laptop"}, ""); code != 401 {
		t.Errorf("an unsigned pairing: %d, want 401", code)
	}
	if code, body := call(host, "POST", "/wallet/pair", wallet.PairRequest{Name: "laptop"}, ""); code != 200 ||
		!strings.Contains(body, wallet.PairCode(host.PubKey().SerializeCompressed())) {
		t.Fatalf("pairing: %d %s", code, body)
	}
	hostHex := hex.EncodeToString(host.PubKey().SerializeCompressed())
	if code, body := call(stranger, "GET", "/wallet/status", nil, hostHex); code != 401 {
		// Only a paired host learns the wallet's state; the forged
		// header naming the paired key must not help.
		t.Errorf("a stranger's status with the paired host's key in the wallet header: %d %s", code, body)
	}
	if code, body := call(host, "GET", "/wallet/status", nil, ""); code != 200 {
		t.Errorf("the paired host's status: %d %s", code, body)
	}
	if code, _ := call(stranger, "POST", "/wallet/lock", struct{}{}, hostHex); code != 401 {
		t.Errorf("a stranger's request with the paired host's key in the wallet header: %d, want 401", code)
	}
	if code, body := call(host, "POST", "/wallet/setup", wallet.SetupRequest{Words: 12, Restore: true}, ""); code != 200 {
		t.Fatalf("restore: %d %s", code, body)
	}
	code, body := call(host, "POST", "/wallet/address", wallet.AddressRequest{Path: "m/84'/0'/0'/0/0"}, "")
	if code != 200 || !strings.Contains(body, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu") {
		t.Errorf("BIP84's first address: %d %s", code, body)
	}
	want := []string{"Pair with a computer?", "Restore a wallet"}
	if fmt.Sprint(screen.titles[:2]) != fmt.Sprint(want) {
		t.Errorf("the screen was asked %q", screen.titles)
	}
}

// A wallet node is one with [wallet] enabled or a seed on the card; the
// wallet's service entry runs it as its own uid in its own network
// namespace with fleet.toml's limits.
func TestWalletNodeAndService(t *testing.T) {
	dir := t.TempDir()
	cfg := fleetconf.Defaults(true)
	if walletNode(cfg, dir) {
		t.Error("a node without [wallet] or a seed is a wallet node")
	}
	os.WriteFile(filepath.Join(dir, keystore.SeedFile), []byte("{}"), 0o600)
	if !walletNode(cfg, dir) {
		t.Error("a seed on the card does not make a wallet node (a typo in fleet.toml would reopen the shell)")
	}
	cfg.Wallet.Enabled, cfg.Wallet.MaxPINTries, cfg.Wallet.UnlockFor = true, "5", "1m30s"
	svc := walletService(cfg)
	if svc.Credential == nil || svc.Credential.Uid != 64100 || svc.Credential.Gid != 64100 || len(svc.Credential.Groups) != 0 ||
		svc.Cloneflags&syscall.CLONE_NEWNET == 0 || !svc.NotifyReady {
		t.Errorf("wallet service %+v", svc)
	}
	if got := strings.Join(svc.Args, " "); got != "/init wallet --max-pin-tries 5 --unlock-for 1m30s --timeout 2m0s" {
		t.Errorf("args %q", got)
	}
}
