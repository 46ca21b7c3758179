package master

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/identity"
)

// The pin follows from the master key alone: the CLI holding master.key
// computes the same pin the master serves, and another key gives another pin.
func TestTLSPinDerived(t *testing.T) {
	k, _ := identity.Generate(rand.Reader)
	other, _ := identity.Generate(rand.Reader)
	a, err := TLSPin(k)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := TLSPin(k)
	c, _ := TLSPin(other)
	if a != b || a == c || len(a) != 2*PinSize {
		t.Fatalf("pins: %s %s %s", a, b, c)
	}
	cfg, served, err := tlsConfig(k)
	if err != nil || served != a {
		t.Fatalf("served pin %s, derived %s: %v", served, a, err)
	}
	// The certificate carries that key (checked on the DER, as a client sees it).
	cert, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pinOf(cert.PublicKey); got != a {
		t.Fatalf("certificate key pin %s", got)
	}
	for _, s := range []string{a, strings.ToUpper(a), "sha256:" + a, " " + a + "\n"} {
		if p, err := ParsePin(s); err != nil || p != a {
			t.Errorf("ParsePin(%q) = %q, %v", s, p, err)
		}
	}
	for _, s := range []string{"", a[:62], a + "00", "zz" + a[2:]} {
		if _, err := ParsePin(s); err == nil {
			t.Errorf("ParsePin(%q) took it", s)
		}
	}
}

// tlsClientOf is a client of m that speaks TLS with pin.
func tlsClientOf(m *Master, pin string) *Client {
	c := clientOf(m)
	c.Pin = pin
	return c
}

// The CLI reaches the master over TLS with the right pin (the API, the log and
// a tunnel's refusal all pass), refuses a master presenting another key with a
// PinError naming both, and will not talk to a master off loopback without a
// pin, before it dials.
func TestClientTLS(t *testing.T) {
	m := startMaster(t, nil)
	record(t, m, "kit-1", time.Now())
	ctx := context.Background()

	c := tlsClientOf(m, m.TLSPin)
	if u := c.url("/api/nodes", nil); !strings.HasPrefix(u, "https://") {
		t.Fatalf("url %s", u)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].Name != "kit-1" {
		t.Fatalf("nodes over TLS: %v %+v", err, nodes)
	}
	var st Status
	if err := c.do(ctx, http.MethodGet, "/api/status", nil, &st); err != nil || st.TLSPin != m.TLSPin {
		t.Fatalf("status over TLS: %v, pin %q want %q", err, st.TLSPin, m.TLSPin)
	}
	if _, err := c.Tunnel(ctx, "nobody", "ssh", ""); err == nil || !strings.Contains(err.Error(), "no node") {
		t.Fatalf("tunnel over TLS to nobody: %v", err)
	}

	wrong, _ := identity.Generate(rand.Reader)
	wrongPin, _ := TLSPin(wrong)
	bad := tlsClientOf(m, wrongPin)
	_, err = bad.Nodes(ctx)
	var pe *PinError
	if !errors.As(err, &pe) || pe.Got != m.TLSPin || pe.Want != wrongPin {
		t.Fatalf("wrong pin: %v", err)
	}
	if _, err := bad.Tunnel(ctx, "kit-1", "ssh", ""); !errors.As(err, &pe) {
		t.Fatalf("tunnel with the wrong pin: %v", err)
	}

	// Off loopback without a pin: refused before any packet (the address is
	// a documentation one, never dialled).
	far := &Client{Addr: "192.0.2.1:8080", Token: strings.Repeat("ab", 24)}
	if _, err := far.Nodes(ctx); !errors.Is(err, ErrNoPin) || !strings.Contains(err.Error(), "--pin") {
		t.Fatalf("no pin off loopback: %v", err)
	}
	if _, err := far.Tunnel(ctx, "kit-1", "ssh", ""); !errors.Is(err, ErrNoPin) {
		t.Fatalf("tunnel without a pin off loopback: %v", err)
	}
	for _, addr := range []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080"} {
		if secure, err := (&Client{Addr: addr}).useTLS(); secure || err != nil {
			t.Errorf("%s: TLS %v, %v", addr, secure, err)
		}
	}
}

// curl's --pinnedpubkey (sha256// and the base64 SHA-256 of the
// SubjectPublicKeyInfo, the pin format of RFC 7469 §2.4) accepts the master's
// certificate under its pin and refuses it under another: the pin is the
// standard SPKI pin, not a form only this CLI understands.
func TestTLSPinMatchesCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not found: install curl (scripts/deps.sh does)")
	}
	m := startMaster(t, nil)
	addr := clientOf(m).Addr
	curl := func(pinHex string) (string, error) {
		raw, _ := hex.DecodeString(pinHex)
		out, err := exec.Command("curl", "-sS", "--insecure", "--max-time", "20", "--pinnedpubkey", "sha256//"+base64.StdEncoding.EncodeToString(raw),
			"https://"+addr+"/api/status").CombinedOutput()
		return string(out), err
	}
	out, err := curl(m.TLSPin)
	if err != nil || !strings.Contains(out, `"tls_pin": "`+m.TLSPin+`"`) {
		t.Fatalf("curl with the master's pin: %v\n%s", err, out)
	}
	other, _ := identity.Generate(rand.Reader)
	otherPin, _ := TLSPin(other)
	if out, err := curl(otherPin); err == nil {
		t.Fatalf("curl took the master under another pin:\n%s", out)
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 90 { // CURLE_SSL_PINNEDPUBKEYNOTMATCH
		t.Fatalf("curl with another pin: %v (want exit 90)\n%s", err, out)
	}
}

// The sniffer gives TLS to anyone and plain HTTP to loopback only: a plain
// request from another host is answered 400 with how to connect, and never
// reaches the handler; TLS from there is served.
func TestSniffListener(t *testing.T) {
	k, _ := identity.Generate(rand.Reader)
	cfg, pin, err := tlsConfig(k)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := newSniffListener(ln, cfg)
	offLoopback := false
	sl.loopback = func(net.Addr) bool { return !offLoopback }
	m := &Master{token: strings.Repeat("cd", 24), opts: Options{Logf: func(string, ...any) {}}}
	srv := &http.Server{Handler: m.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls=%v", r.TLS != nil)
	}))}
	go srv.Serve(sl)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	plain := func() (string, error) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /?token=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", m.token)
		b, err := io.ReadAll(bufio.NewReader(conn))
		return string(b), err
	}
	if out, err := plain(); err != nil || !strings.Contains(out, "200 OK") || !strings.Contains(out, "tls=false") {
		t.Fatalf("plain HTTP from loopback: %v\n%s", err, out)
	}
	offLoopback = true
	if out, err := plain(); err != nil || !strings.HasPrefix(out, "HTTP/1.1 400") || !strings.Contains(out, "https://") || strings.Contains(out, "tls=") {
		t.Fatalf("plain HTTP from off loopback: %v\n%s", err, out)
	}
	c := &Client{Addr: addr, Pin: pin}
	req, _ := http.NewRequest("GET", "https://"+addr+"/?token="+m.token, nil)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "tls=true" {
		t.Fatalf("TLS from off loopback: %q", body)
	}
	// A raw TLS client with no pin check gets the same certificate the pin names.
	tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := pinOf(tc.ConnectionState().PeerCertificates[0].PublicKey)
	tc.Close()
	if got != pin {
		t.Fatalf("served key pin %s, want %s", got, pin)
	}
}

// A peer that connects and sends nothing holds a sniffing slot until it
// hangs up or sniffTimeout passes; with every slot held, a new connection is
// closed at once and counted, and the others are still served once a slot
// frees.
func TestSniffListenerSlots(t *testing.T) {
	k, _ := identity.Generate(rand.Reader)
	cfg, _, _ := tlsConfig(k)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := newSniffListener(ln, cfg)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(sl)
	t.Cleanup(func() { srv.Close() })
	var idle []net.Conn
	for range maxSniffing {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// One more is closed by the sniffer: its read sees EOF, not a hang.
	extra, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	extra.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection over the sniffing cap was kept: %v", err)
	}
	extra.Close()
	if sl.refused.Load() == 0 {
		t.Fatal("the refused connection was not counted")
	}
	for _, c := range idle {
		c.Close()
	}
	// Slots free as the idle peers hang up; a real request is served.
	waitFor(t, "a request after the idle peers left", func() bool {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b) == "ok"
	})
}

// waitFor polls cond every 50 ms for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
