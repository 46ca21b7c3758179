// Package web is the messaging page that phones open on a node: plain HTML,
// CSS and JavaScript embedded in the binary, with no outside resource at all
// (an emergency kit has no Internet), reading the node's messaging API
// (services/msg: inbox, outbox, send) and its login (internal/apiauth) with
// relative URLs. The node serves Handler at GET /msg/ and GET /msg/static/,
// both public: the page holds no secret, and asks for the passphrase itself.
package web

import (
	"embed"
	"net/http"

	"github.com/skyfleet/skyfleet/internal/webasset"
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

// assets maps request paths to files: an explicit table pins the content
// types (a host's mime tables would otherwise decide) and serves nothing else.
var assets = map[string]webasset.Asset{
	PagePath:                 webasset.Load(files, "index.html", "text/html; charset=utf-8"),
	StaticPath + "app.js":    webasset.Load(files, "app.js", "text/javascript; charset=utf-8"),
	StaticPath + "style.css": webasset.Load(files, "style.css", "text/css; charset=utf-8"),
}

// Handler serves the page at PagePath and its assets under StaticPath (GET
// and HEAD), each with CSP and "Cache-Control: no-cache" with a content-hash
// ETag, so a phone picks up a node's new page at once yet an unchanged file
// costs only a 304. Other paths get 404.
func Handler() http.Handler {
	return webasset.Handler(assets, map[string]string{
		"Content-Security-Policy": CSP,
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	})
}
