package web

import (
	"encoding/json"
	"net/http"

	"github.com/skyfleet/skyfleet/internal/apiauth"
)

// Routes is the messaging surface under /msg/ and who may call each path, for
// every server that offers it (the node's API in services/meshd, the status
// service of a Pi), so that the two cannot drift apart:
//
//	GET  /msg/, /msg/static/...          public     the page (Handler)
//	POST /msg/login, /msg/logout         public     g.Login, g.Logout
//	POST /msg/send, GET /msg/inbox,
//	     /msg/outbox, /msg/stats         messaging  api
//	/msg/... (anything else)             control    api
//
// api serves the messaging API (msg.Service.Handler, or a proxy to it). g is
// the Guard the routes will be served behind; nil for a server that asks no
// credential (the mesh service's root-only socket), where login and logout
// answer 404: the status service in front of it serves them itself.
func Routes(g *apiauth.Guard, api http.Handler) []apiauth.Route {
	var login, logout http.Handler = noLogin, noLogin
	if g != nil {
		login, logout = g.Login(), g.Logout()
	}
	return []apiauth.Route{
		{Pattern: "GET " + PagePath + "{$}", Access: apiauth.Public, Handler: Handler()},
		{Pattern: "GET " + StaticPath, Access: apiauth.Public, Handler: Handler()},
		{Pattern: "POST " + apiauth.LoginPath, Access: apiauth.Public, Handler: login},
		{Pattern: "POST " + apiauth.LogoutPath, Access: apiauth.Public, Handler: logout},
		{Pattern: "POST /msg/send", Access: apiauth.Messaging, Handler: api},
		{Pattern: "GET /msg/inbox", Access: apiauth.Messaging, Handler: api},
		{Pattern: "GET /msg/outbox", Access: apiauth.Messaging, Handler: api},
		{Pattern: "GET /msg/stats", Access: apiauth.Messaging, Handler: api},
		// Whatever else the messaging API grows stays closed until it is
		// given a class here.
		{Pattern: "/msg/", Access: apiauth.Control, Handler: api},
	}
}

var noLogin = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	json.NewEncoder(w).Encode(map[string]string{"error": "no login here: this socket asks for no credential"})
})
