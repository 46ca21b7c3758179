package saf

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// The node API under /saf/; every path is in the control class (the master's
// signature or the node's API token, internal/apiauth):
//
//	GET  /saf/stats    StoreStats and EngineStats as {"store": ..., "engine": ...},
//	                   and what AddStats added (on a Pi: "usb_stick", usbstick.Stats)
//	GET  /saf/bundles  []Info, every held bundle, oldest custody first
//	GET  /saf/export   every held bundle not for this node as data-mule files, each
//	                   a 4-byte big-endian length then the file (MarshalFile)
//	POST /saf/import   one data-mule file as the body (at most MaxFile bytes);
//	                   answers {"id": ..., "status": "accepted"|"duplicate"|...}
//
// Export leaves custody where it is: a stick acknowledges nothing.

// MaxFile is the largest data-mule file in bytes.
const MaxFile = 4 + 8 + MaxBundle

// Handler serves the /saf/ paths.
func (e *Engine) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /saf/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, e.statsDoc())
	})
	mux.HandleFunc("GET /saf/bundles", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, e.store.List())
	})
	mux.HandleFunc("GET /saf/export", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		rc := http.NewResponseController(w)
		e.Export(func(_ ID, file []byte) error {
			var n [4]byte
			binary.BigEndian.PutUint32(n[:], uint32(len(file)))
			if _, err := w.Write(n[:]); err != nil {
				return err
			}
			_, err := w.Write(file)
			rc.Flush()
			return err
		})
	})
	mux.HandleFunc("POST /saf/import", func(w http.ResponseWriter, req *http.Request) {
		b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxFile))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("a bundle file is at most %d bytes", MaxFile)})
			return
		}
		id, st, err := e.Import(b)
		switch {
		case errors.Is(err, ErrMalformed):
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		default:
			code := http.StatusOK
			if st == StatusFull {
				code = http.StatusInsufficientStorage
			}
			writeJSON(w, code, map[string]string{"id": id.String(), "status": st.String()})
		}
	})
	return mux
}

// ReadExport splits a GET /saf/export body into data-mule files, calling fn for
// each. Errors: a truncated stream, a length above MaxFile, or fn's error.
func ReadExport(r io.Reader, fn func(file []byte) error) error {
	var n [4]byte
	for {
		if _, err := io.ReadFull(r, n[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		size := binary.BigEndian.Uint32(n[:])
		if size > MaxFile {
			return malformed("export entry of %d bytes", size)
		}
		file := make([]byte, size)
		if _, err := io.ReadFull(r, file); err != nil {
			return err
		}
		if err := fn(file); err != nil {
			return err
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
