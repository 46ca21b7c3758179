package wallet

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/skyfleet/skyfleet/internal/durable"
)

// HostsFile lists the paired host computers in the wallet's directory.
const HostsFile = "hosts.json"

// Host is a paired host computer: the public key it signs its requests
// with (its secp256k1 key, as the fleet master signs: internal/apiauth).
type Host struct {
	Key string `json:"key"` // 66 hex characters, compressed
	// Name is what the host called itself at pairing, as shown then.
	Name     string    `json:"name"`
	PairedAt time.Time `json:"paired_at"`
	LastUsed time.Time `json:"last_used"`
}

// hostList is the paired hosts, at most MaxHosts, each forgotten after
// HostExpiry unused. Last-use times are kept in memory and written with
// the next pairing: a write per request would wear the card.
type hostList struct {
	path string
	now  func() time.Time
	mu   sync.Mutex
	list []Host
}

// loadHosts reads dir's HostsFile. A file that cannot be parsed is moved
// aside (to HostsFile + ".corrupt") and reported, and no host is paired:
// pairing again needs the screen, so nothing is lost that the person
// cannot restore, and a damaged file admits nobody.
func loadHosts(dir string, now func() time.Time) (*hostList, error) {
	h := &hostList{path: filepath.Join(dir, HostsFile), now: now}
	b, err := os.ReadFile(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &h.list)
		for _, x := range h.list {
			if k, kerr := hex.DecodeString(x.Key); err == nil && (kerr != nil || len(k) != 33) {
				err = fmt.Errorf("a key is not 33 bytes of hex")
			}
		}
	}
	if err != nil {
		h.list = nil
		aside := h.path + ".corrupt"
		if rerr := os.Rename(h.path, aside); rerr != nil {
			return h, fmt.Errorf("wallet: %s is damaged (%v) and could not be moved aside: %w", h.path, err, rerr)
		}
		return h, fmt.Errorf("wallet: %s was damaged (%v): moved to %s; no host is paired", h.path, err, aside)
	}
	h.expire()
	return h, nil
}

// expire drops hosts unused for HostExpiry (and keeps the newest MaxHosts).
func (h *hostList) expire() {
	now := h.now()
	keep := h.list[:0]
	for _, x := range h.list {
		if now.Sub(x.LastUsed) < HostExpiry {
			keep = append(keep, x)
		}
	}
	sort.SliceStable(keep, func(i, j int) bool { return keep[i].LastUsed.After(keep[j].LastUsed) })
	if len(keep) > MaxHosts {
		keep = keep[:MaxHosts]
	}
	h.list = keep
}

// paired reports whether key (66 hex) is a paired host, and notes its use.
func (h *hostList) paired(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire()
	for i := range h.list {
		if h.list[i].Key == key {
			h.list[i].LastUsed = h.now()
			return true
		}
	}
	return false
}

// add pairs key, forgetting the host unused longest when MaxHosts are
// paired, and writes the list durably.
func (h *hostList) add(key, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	list := []Host{{Key: key, Name: name, PairedAt: now, LastUsed: now}}
	for _, x := range h.list {
		if x.Key != key {
			list = append(list, x)
		}
	}
	h.list = list
	h.expire()
	b, err := json.MarshalIndent(h.list, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return err
	}
	return durable.WriteFile(h.path, b, 0o600)
}

// remove unpairs key; it reports whether key was paired.
func (h *hostList) remove(key string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	keep := h.list[:0]
	for _, x := range h.list {
		if x.Key != key {
			keep = append(keep, x)
		}
	}
	if len(keep) == len(h.list) {
		return false, nil
	}
	h.list = keep
	b, err := json.MarshalIndent(h.list, "", "  ")
	if err != nil {
		return true, err
	}
	return true, durable.WriteFile(h.path, b, 0o600)
}

// name is the name key was paired under; "" for a key not paired.
func (h *hostList) name(key string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range h.list {
		if x.Key == key {
			return x.Name
		}
	}
	return ""
}

func (h *hostList) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.list)
}
