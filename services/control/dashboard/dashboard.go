// Package dashboard is the fleet master's operator dashboard: a single-page app of
// plain HTML, CSS and JavaScript, embedded in the binary, that reads the master's
// JSON API (api/status, api/nodes, api/nodes/{address}, api/graph, api/log) with
// relative URLs. The master mounts Handler at / and its API at /api/.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed static
var static embed.FS

// asset is one embedded file with the headers it is served with.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets maps request paths to files; the app is three files, so an explicit table
// is simpler than a file server and pins the content types, which would otherwise
// depend on the host's mime tables.
var assets = map[string]asset{
	"/":           load("index.html", "text/html; charset=utf-8"),
	"/index.html": load("index.html", "text/html; charset=utf-8"),
	"/app.js":     load("app.js", "text/javascript; charset=utf-8"),
	"/style.css":  load("style.css", "text/css; charset=utf-8"),
}

func load(name, contentType string) asset {
	b, err := static.ReadFile("static/" + name)
	if err != nil {
		panic(err) // embedded at build time: missing means a broken build
	}
	sum := sha256.Sum256(b)
	return asset{body: b, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// Handler serves the dashboard: / (index.html), /app.js and /style.css. Responses
// carry "Cache-Control: no-cache" with a content-hash ETag, so a browser always
// revalidates and picks up a new master's dashboard at once, yet an unchanged file
// costs only a 304.
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
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
