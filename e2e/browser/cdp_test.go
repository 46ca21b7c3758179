//go:build e2e

package browser

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDriven types into a page, clicks, waits for the page's fetch, takes a
// screenshot, and keeps two pages' cookies apart; a script the page's CSP
// blocks is reported by Errors.
func TestDriven(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		w.Write([]byte(`<!doctype html><meta name="viewport" content="width=device-width">
<input id="in"><button id="go">Go</button><p id="out"></p><script src="/app.js"></script><script>alert(1)</script>`))
	})
	mux.HandleFunc("/app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write([]byte(`document.getElementById('go').addEventListener('click', async () => {
  const r = await fetch('/echo?v=' + encodeURIComponent(document.getElementById('in').value));
  document.getElementById('out').textContent = await r.text();
});`))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie("seen"); err == nil {
			w.Write([]byte("again " + r.URL.Query().Get("v")))
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "seen", Value: "1"})
		w.Write([]byte("hello " + r.URL.Query().Get("v")))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, err := Launch(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var pages []*Page
	for range 2 {
		p, err := b.NewPage(ctx, 360, 640, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Navigate(ctx, srv.URL+"/"); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
	}
	for i, name := range []string{"ana", "ben"} {
		p := pages[i]
		if err := p.Type(ctx, "#in", name+" ✓"); err != nil {
			t.Fatal(err)
		}
		if err := p.Click(ctx, "#go"); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitFor(ctx, `document.getElementById('out').textContent === 'hello `+name+` ✓'`); err != nil {
			t.Fatalf("page %d: %v (each page has cookies of its own)", i, err)
		}
	}
	var width int
	if err := pages[0].Eval(ctx, "window.innerWidth", &width); err != nil || width != 360 {
		t.Errorf("viewport width %d (%v), want 360", width, err)
	}
	shot := filepath.Join(t.TempDir(), "driven.png")
	if err := pages[0].Screenshot(ctx, shot); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(shot); err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
		t.Errorf("screenshot: %d bytes, %v", len(b), err)
	}
	errs := pages[0].Errors(ctx)
	if len(errs) != 1 || !strings.Contains(errs[0], "script-src") {
		t.Errorf("errors %q, want the inline script blocked by the CSP", errs)
	}
}
