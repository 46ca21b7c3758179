// Package web is the messaging page that phones open on a node: plain HTML,
// CSS and JavaScript embedded in the binary, with no outside resource at all
// (an emergency kit has no Internet), reading the node's messaging API
// (services/msg: inbox, outbox, send) and its login (internal/apiauth) with
// relative URLs. The node serves Handler at GET /msg/ and GET /msg/static/,
// both public: the page holds no secret, and asks for the passphrase itself.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed index.html app.js style.css
var files embed.FS

// Where the node serves the page.
const (
	// PagePath is the page itself (index.html); its URLs are relative to it.
	PagePath = "/msg/"
	// StaticPath holds the page's script and style sheet.
	StaticPath = "/msg/static/"
)

// CSP is the page's Content-Security-Policy: only the node's own scripts,
// styles and API (no inline script or style, so an injected message text
// could not run even if it reached the DOM as markup), no framing.
const CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// asset is one embedded file with the headers it is served with.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets maps request paths to files: an explicit table pins the content
// types (a host's mime tables would otherwise decide) and serves nothing else.
var assets = map[string]asset{
	PagePath:                 load("index.html", "text/html; charset=utf-8"),
	StaticPath + "app.js":    load("app.js", "text/javascript; charset=utf-8"),
	StaticPath + "style.css": load("style.css", "text/css; charset=utf-8"),
}

func load(name, contentType string) asset {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time: missing means a broken build
	}
	sum := sha256.Sum256(b)
	return asset{body: b, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// Handler serves the page at PagePath and its assets under StaticPath (GET
// and HEAD), each with CSP and "Cache-Control: no-cache" with a content-hash
// ETag, so a phone picks up a node's new page at once yet an unchanged file
// costs only a 304. Other paths get 404.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
