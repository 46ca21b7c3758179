// Package dashboard is the fleet master's operator dashboard: a single-page app of
// plain HTML, CSS and JavaScript, embedded in the binary, that reads the master's
// JSON API (api/status, api/nodes, api/nodes/{address}, api/graph, api/log) with
// relative URLs. The master mounts Handler at / and its API at /api/.
package dashboard

import (
	"embed"
	"net/http"

	"github.com/skyfleet/skyfleet/internal/webasset"
)

//go:embed static
var static embed.FS

// assets maps request paths to files; the app is three files, so an explicit table
// is simpler than a file server and pins the content types, which would otherwise
// depend on the host's mime tables.
var assets = map[string]webasset.Asset{
	"/":           webasset.Load(static, "static/index.html", "text/html; charset=utf-8"),
	"/index.html": webasset.Load(static, "static/index.html", "text/html; charset=utf-8"),
	"/app.js":     webasset.Load(static, "static/app.js", "text/javascript; charset=utf-8"),
	"/style.css":  webasset.Load(static, "static/style.css", "text/css; charset=utf-8"),
}

// Handler serves the dashboard: / (index.html), /app.js and /style.css. Responses
// carry "Cache-Control: no-cache" with a content-hash ETag, so a browser always
// revalidates and picks up a new master's dashboard at once, yet an unchanged file
// costs only a 304.
func Handler() http.Handler { return webasset.Handler(assets, nil) }
