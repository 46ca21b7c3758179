// Package webasset serves the few embedded files of Skyfleet's web pages (the
// master's dashboard, the messaging page for phones) from an explicit table:
// content types pinned rather than taken from a host's mime tables, nothing but
// the listed paths, "Cache-Control: no-cache" with a content-hash ETag so a
// browser picks up a new build at once yet an unchanged file costs only a 304.
package webasset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"time"
)

// Asset is one embedded file with the headers it is served with.
type Asset struct {
	body        []byte
	contentType string
	etag        string
}

// Load reads name from fsys (an embed.FS) as an Asset of contentType. It panics
// when the file is missing: it is embedded at build time, so that is a broken build.
func Load(fsys fs.FS, name, contentType string) Asset {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return Asset{body: b, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// Handler serves assets by request path (GET and HEAD only: 405 with Allow
// otherwise; 404 for any other path), with the caching headers above,
// "X-Content-Type-Options: nosniff", and every header of extra.
func Handler(assets map[string]Asset, extra map[string]string) http.Handler {
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
		for k, v := range extra {
			h.Set(k, v)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
