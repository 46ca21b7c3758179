package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/skyfleet/skyfleet/gokrazy/mounts"
	"github.com/skyfleet/skyfleet/gokrazy/power"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/update"
	"github.com/skyfleet/skyfleet/services/update/bundle"
	"github.com/skyfleet/skyfleet/services/update/slot"
)

// newUpdater is PID 1's updater: bundles go into the slot that is not running on
// the boot partition mounted at bootDir; the last outcome is kept in dataDir. It
// accepts the release keys of fleet.toml (none: every bundle is refused, and the
// refusal says why) for the node's board, and refuses a downgrade of version.
func newUpdater(st *nodeState, cfg fleetconf.Config, bootDir, dataDir string, pw *power.Power) *update.Updater {
	var keys [][bundle.KeyLen]byte
	for _, k := range cfg.Release.Keys { // checked by fleetconf: 66 hex characters
		if b, err := hex.DecodeString(k); err == nil && len(b) == bundle.KeyLen {
			keys = append(keys, [bundle.KeyLen]byte(b))
		}
	}
	return &update.Updater{
		Card:      slot.Card{Dir: bootDir},
		Running:   st.Slot,
		StateFile: filepath.Join(dataDir, "update.json"),
		SpoolDir:  filepath.Join(dataDir, "update-spool"),
		Logf:      func(format string, args ...any) { logf("update: "+format, args...) },
		Policy: func() bundle.Policy {
			return bundle.Policy{Keys: keys, Board: st.Board, Running: version}
		},
		Reboot: func(tryboot bool) error {
			if tryboot {
				return pw.RebootTryboot()
			}
			return pw.Reboot()
		},
		// /boot is mounted read-only (a power cut cannot touch the firmware);
		// an update makes it writable for its own writes only.
		Remount: func(writable bool) error { return mounts.RemountBoot(bootDir, writable) },
	}
}

// afterBoot lets the updater judge this boot once the services were given their
// time to come up: a trial boot whose services are not all ready (ready is
// WaitReady's error) goes back to the old slot; so does one that cannot reach
// the master fleet.toml names (master, its key in hex; "" for none) within
// masterLinkWait. One that passes both commits.
func afterBoot(u *update.Updater, ready error, master string) {
	ctx, cancel := context.WithTimeout(context.Background(), masterLinkWait)
	defer cancel()
	before := u.Status().Last
	st, err := u.AfterBoot(ctx, func(ctx context.Context) error {
		if ready != nil {
			return ready
		}
		return masterLinked(ctx, meshSocket, master)
	})
	if err != nil {
		logf("update: %v", err)
	}
	if l := st.Last; l != nil && (before == nil || *l != *before) {
		logf("update: %s %s in slot %s%s", l.Result, l.Version, l.Slot, reasonSuffix(l.Reason))
	}
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

// serveUpdate is PUT /update on PID 1's socket (the status service admits the
// master or a local credential to it): the body is a bundle. It answers 202 once
// the bundle is in the other slot and named for a trial; a refused bundle gets
// 422 with the reason and changes nothing. The reboot into the trial is asked
// for apart (POST /update/reboot), by the status service once it has passed the
// answer on: a reboot started here stopped the status service before it had.
//
// With ?id=SHA256 (the bundle file's, hex) the transfer can be resumed after a
// broken link: the node keeps what arrived, GET /update/held?id= says how
// much, and PUT /update?id=SHA256&offset=N sends the rest (409 with "have"
// when N is not what the node holds; 400 for a malformed id or offset).
func serveUpdate(u *update.Updater) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if u == nil {
			writeError(w, http.StatusServiceUnavailable, "this node cannot apply updates: its boot partition is not mounted")
			return
		}
		var res update.Resume
		if q := r.URL.Query(); q.Has("id") {
			res.ID = q.Get("id")
			if o := q.Get("offset"); o != "" {
				n, err := strconv.ParseInt(o, 10, 64)
				if err != nil || n < 0 {
					writeError(w, http.StatusBadRequest, "offset must be a byte count")
					return
				}
				res.Offset = n
			}
		}
		m, err := u.ApplyResumable(res, r.Body, nil)
		var oe *update.OffsetError
		switch {
		case errors.Is(err, update.ErrBusy):
			writeError(w, http.StatusConflict, err.Error())
			return
		case errors.As(err, &oe):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(map[string]any{"error": err.Error(), "have": oe.Have})
			return
		case errors.Is(err, update.ErrID):
			writeError(w, http.StatusBadRequest, err.Error())
			return
		case errors.Is(err, slot.ErrNoRoom): // /perm is too full for it
			writeError(w, http.StatusInsufficientStorage, err.Error())
			return
		case bundle.Refused(err): // the bundle's fault: a client error
			writeError(w, http.StatusUnprocessableEntity, err.Error())
			return
		case err != nil:
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		st := u.Status()
		go trialFallback(u)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]string{
			"result": update.ResultTrial, "version": m.Version, "slot": st.Trial,
			"message": "installed; rebooting into slot " + st.Trial + " once, to commit it when its services are ready",
		})
	}
}

// serveUpdateHeld is GET /update/held?id=SHA256 on PID 1's socket: how many
// bytes of that bundle the node holds from a transfer that broke off, as
// {"id": ..., "have": N}; 0 for any other bundle.
func serveUpdateHeld(u *update.Updater) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if u == nil {
			writeError(w, http.StatusServiceUnavailable, "this node cannot apply updates: its boot partition is not mounted")
			return
		}
		id := r.URL.Query().Get("id")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": id, "have": u.Held(id)})
	}
}

// trialRebootFallback is how long PID 1 waits, after it answered a PUT /update
// with 202, for the status service to ask for the trial reboot (it asks within
// its answerGrace, 10 s) before it reboots into the trial itself: a status
// service that crashed or was stopped in between would leave the node with a
// trial named that no boot ever tries. A variable for tests.
var trialRebootFallback = time.Minute

// trialFallback reboots into the trial once trialRebootFallback has passed, if
// it is still pending then (RebootTrial starts no second reboot).
func trialFallback(u *update.Updater) {
	time.Sleep(trialRebootFallback)
	if st := u.Status(); st.Trial == "" || st.Last == nil || st.Last.Result != update.ResultTrial {
		return
	}
	logf("update: nobody asked for the trial reboot within %v of the answer; rebooting into slot %s now", trialRebootFallback, u.Status().Trial)
	if err := u.RebootTrial(); err != nil {
		logf("update: reboot into the trial slot: %v", err)
	}
}

// serveUpdateReboot is POST /update/reboot on PID 1's socket (local processes
// only): reboot into the slot the last PUT /update wrote, once. 409 when no
// trial is pending.
func serveUpdateReboot(u *update.Updater) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if u == nil {
			writeError(w, http.StatusServiceUnavailable, "this node cannot apply updates: its boot partition is not mounted")
			return
		}
		if st := u.Status(); st.Trial == "" || st.Last == nil || st.Last.Result != update.ResultTrial {
			writeError(w, http.StatusConflict, "no update is waiting for its trial boot")
			return
		}
		w.WriteHeader(http.StatusAccepted)
		go func() {
			if err := u.RebootTrial(); err != nil {
				logf("update: reboot into the trial slot: %v", err)
			}
		}()
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
