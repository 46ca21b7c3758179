//go:build e2e

package e2e

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/internal/apiauth"
)

// TestLANMemoryProbe floods a `skyfleet node` with 40,000 POST /mesh/ping for
// random public keys, as a stranger on the LAN could, and then 40,000 more
// carrying the node's API token (a local tool gone wrong): the node's resident
// memory must stay within 10% of where it started. Before the API had access
// classes and the end-to-end peer map a cap and an expiry, the stranger's flood
// alone grew a node from 21 MB to 76 MB, for good.
func TestLANMemoryProbe(t *testing.T) {
	m := newMeshNode(t, "probe", nil)
	m.start(t, fmt.Sprintf("udp://127.0.0.1:%d", freeUDPPort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t)), nil, false)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(apiGet(m.status, "/status"), `"public_key"`) {
		if time.Now().After(deadline) || m.dead() {
			t.Fatalf("node did not come up:\n%s", tail(m.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid := m.cmd.Process.Pid

	flood := func(n int64, cred apiauth.Credential, want int) {
		var next atomic.Int64
		var wrong atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Timeout: 10 * time.Second}
				for i := next.Add(1); i <= n; i = next.Add(1) {
					k, err := secp256k1.GeneratePrivateKey() // a fresh key on the curve each time
					if err != nil {
						t.Error(err)
						return
					}
					key := hex.EncodeToString(k.PubKey().SerializeCompressed())
					req, _ := http.NewRequest("POST", "http://"+m.status+"/mesh/ping?timeout=1ms&addr="+key, nil)
					if cred != nil {
						cred.Authorize(c, req)
					}
					resp, err := c.Do(req)
					if err != nil {
						t.Errorf("request %d: %v", i, err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != want && wrong.Add(1) == 1 {
						t.Logf("first unexpected answer: %s", resp.Status)
					}
				}
			}()
		}
		wg.Wait()
		if w := wrong.Load(); w > 0 {
			t.Errorf("%d of %d pings answered other than %d", w, n, want)
		}
	}
	// The node in service: its HTTP server, heap and goroutines warmed by a tenth
	// of the probe of each kind, so that the start is a node at work, not one
	// that has never answered a request.
	tok := m.credential(t)
	flood(4000, nil, http.StatusUnauthorized)
	flood(4000, tok, http.StatusNotFound)
	_, start := procStat(t, pid)
	check := func(phase string) {
		// The Go runtime returns freed memory to the kernel within a few minutes
		// on its own; ask the node's scavenger-independent figure right away
		// instead: RSS now, against the start.
		_, rss := procStat(t, pid)
		t.Logf("after %s: RSS %d KiB (start %d KiB, %+.1f%%)", phase, rss, start, 100*float64(rss-start)/float64(start))
		if float64(rss) > 1.10*float64(start) {
			t.Errorf("after %s the node's RSS is %d KiB, more than 10%% above the %d KiB it started with", phase, rss, start)
		}
	}
	t0 := time.Now()
	flood(40000, nil, http.StatusUnauthorized)
	t.Logf("40,000 stranger pings in %v", time.Since(t0))
	check("40,000 pings from a stranger")
	t0 = time.Now()
	// Unknown keys: no route, and no state left behind. The 1 ms deadline keeps
	// the probe short: without it each ping waits up to a second for the key's
	// announcement, holding a timer but no state.
	flood(40000, tok, http.StatusNotFound)
	t.Logf("40,000 pings with the token in %v", time.Since(t0))
	check("40,000 pings of unknown keys with the token")
}
