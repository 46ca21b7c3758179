package webasset

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"
)

func TestHandler(t *testing.T) {
	fsys := fstest.MapFS{"a.js": {Data: []byte("x()")}}
	h := Handler(map[string]Asset{"/a.js": Load(fsys, "a.js", "text/javascript")}, map[string]string{"X-Frame-Options": "DENY"})
	do := func(method, path, etag string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	w := do("GET", "/a.js", "")
	if w.Code != 200 || w.Body.String() != "x()" || w.Header().Get("Content-Type") != "text/javascript" ||
		w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET: %d %q %v", w.Code, w.Body, w.Header())
	}
	if w2 := do("GET", "/a.js", w.Header().Get("ETag")); w2.Code != http.StatusNotModified {
		t.Fatalf("unchanged file: %d, want 304", w2.Code)
	}
	if w := do("POST", "/a.js", ""); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d", w.Code)
	}
	if w := do("GET", "/b.js", ""); w.Code != http.StatusNotFound {
		t.Fatalf("unlisted path: %d", w.Code)
	}
}
