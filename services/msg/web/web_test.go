package web

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// The page is served with its CSP at /msg/ and its assets under /msg/static/,
// and nothing else.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for path, ctype := range map[string]string{
		"/msg/":                 "text/html",
		"/msg/static/app.js":    "text/javascript",
		"/msg/static/style.css": "text/css",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if got := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(got, "default-src 'self'") {
			t.Errorf("%s: CSP %q", path, got)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("ETag") == "" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
	}
	for _, path := range []string{"/msg/index.html", "/msg/static/", "/msg/static/web.go", "/msg/static/../web.go", "/"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	resp, err := http.Post(srv.URL+"/msg/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /msg/: %d", resp.StatusCode)
	}
}

// The page works offline and under its CSP: no outside URL, no inline
// script, style or event handler, no eval.
func TestSelfContained(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		b, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, bad := range []*regexp.Regexp{
			regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`), // an outside URL
			regexp.MustCompile(`(?i)@import|@font-face|url\(`),
			regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|<style|\son[a-z]+=|style=`),
			regexp.MustCompile(`\beval\(|new Function|innerHTML|outerHTML|insertAdjacentHTML|document\.write`),
		} {
			if m := bad.FindString(s); m != "" {
				t.Errorf("%s holds %q", name, m)
			}
		}
	}
	page, _ := files.ReadFile("index.html")
	for _, want := range []string{`name="viewport" content="width=device-width`, `src="static/app.js"`, `href="static/style.css"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
}
