package msg

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/skyfleet/skyfleet/services/saf"
)

// Resolver turns a recipient as a user types it (a node address or a public key in
// hex) into its key. Errors say why it cannot.
type Resolver func(to string) ([33]byte, error)

// SendRequest is the body of POST /msg/send. To is a node address, a public key
// in hex, or "*" for every node of the fleet. Clear sends the message signed but
// not encrypted (Service.SendClear), so that it may cross amateur-radio hops.
type SendRequest struct {
	To    string `json:"to"`
	Text  string `json:"text"`
	Clear bool   `json:"clear,omitempty"`
}

// Handler serves the messaging API; the node puts it behind apiauth's
// messaging class (the phone page's session cookie, an open node, or the
// control credentials; see services/msg/web.Routes):
//
//	POST /msg/send    SendRequest -> OutboxEntry, once this node holds custody
//	GET  /msg/inbox   []InboxEntry, oldest first
//	GET  /msg/outbox  []OutboxEntry with states held, forwarded, delivered, expired
//	GET  /msg/stats   Stats
func (s *Service) Handler(resolve Resolver) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /msg/send", func(w http.ResponseWriter, req *http.Request) {
		var sr SendRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, 16<<10))
		if err := dec.Decode(&sr); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON {\"to\": ADDRESS, \"text\": TEXT}"})
			return
		}
		var to [33]byte
		if sr.To != "*" {
			var err error
			if to, err = resolve(sr.To); err != nil {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
				return
			}
		}
		send := s.Send
		if sr.Clear {
			send = s.SendClear
		}
		e, err := send(to, sr.Text)
		switch {
		case errors.Is(err, ErrMalformed):
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		case errors.Is(err, saf.ErrFull):
			writeJSON(w, http.StatusInsufficientStorage, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, http.StatusOK, e)
		}
	})
	mux.HandleFunc("GET /msg/inbox", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Inbox()) })
	mux.HandleFunc("GET /msg/outbox", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Outbox()) })
	mux.HandleFunc("GET /msg/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
