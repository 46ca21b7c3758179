//go:build e2e

package browser

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRender checks that scripts run (including a fetch and a timer) and that a
// page with an endless refresh timer still returns within the virtual-time budget.
func TestRender(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/data" {
			fmt.Fprint(w, `{"answer":42}`)
			return
		}
		fmt.Fprint(w, `<!doctype html><html><body><p id="out">waiting</p><script>
setInterval(() => {}, 1000); // a refresh loop that never ends
setTimeout(async () => {
  const d = await (await fetch("data")).json();
  document.getElementById("out").textContent = "answer " + d.answer;
}, 2000);
</script></body></html>`)
	}))
	defer srv.Close()

	shot := filepath.Join(t.TempDir(), "page.png")
	start := time.Now()
	dom, err := Render(context.Background(), srv.URL, shot, Options{Width: 640, Height: 480, Wait: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("two chromium runs took %v", time.Since(start))
	if !strings.Contains(dom, `<p id="out">answer 42</p>`) {
		t.Errorf("script did not run; DOM:\n%s", dom)
	}
	b, err := os.ReadFile(shot)
	if err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
		t.Errorf("screenshot is not a PNG (err %v)", err)
	}
}
