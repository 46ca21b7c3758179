package master

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/skyfleet/skyfleet/services/control/registry"
)

// answer renders what a handler writes as the bytes of an HTTP/1.1 answer.
func answer(h func(w http.ResponseWriter)) []byte {
	rec := httptest.NewRecorder()
	h(rec)
	var b bytes.Buffer
	rec.Result().Write(&b)
	return b.Bytes()
}

// tunnelSeeds are the master's real answers to POST /api/tunnel: the 101
// written by serveTunnel (with the start of an SSH stream behind it), and the
// refusals its error paths write.
func tunnelSeeds() [][]byte {
	key := bytes.Repeat([]byte{0x02, 0xab}, 17)[:33]
	var ok bytes.Buffer
	writeSwitch(&ok, key)
	withStream := append(bytes.Clone(ok.Bytes()), "SSH-2.0-skyfleet\r\n\x00\x00\x01\x0c"...)
	amb := &registry.AmbiguousNameError{Name: "kit-07", Candidates: []registry.Node{
		{Address: "sky1a", Name: "kit-07", Online: true, LastSeen: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{Address: "sky1b", Name: "kit-07\x1b[2J"},
	}}
	m := &Master{opts: Options{Logf: func(string, ...any) {}}}
	return [][]byte{
		ok.Bytes(),
		withStream,
		answer(func(w http.ResponseWriter) { writeLookupError(w, amb) }),
		answer(func(w http.ResponseWriter) {
			writeLookupError(w, fmt.Errorf("%w: no node %q in the registry or the mesh", registry.ErrUnknownNode, "nobody"))
		}),
		answer(func(w http.ResponseWriter) { writeError(w, http.StatusBadGateway, errors.New("node sky1a: no route")) }),
		answer(func(w http.ResponseWriter) {
			writeError(w, http.StatusBadRequest, fmt.Errorf("want Upgrade: %s", TunnelProtocol))
		}),
		answer(func(w http.ResponseWriter) {
			m.checkHost(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("POST", "http://evil.example/api/tunnel", nil))
		}),
		[]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\n\r\n"),
		[]byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 9\r\n\r\n\x1b]0;pwn\x07"),
		[]byte("garbage\r\n\r\n"),
	}
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzTunnelResponse feeds the CLI's parser of the master's tunnel answer
// arbitrary bytes. Whatever they are: no panic; at most maxTunnelHeader bytes
// are read before the answer is accepted; an accepted answer is a 101 naming
// a 33-byte key that is in the answer, and the bytes after its headers are
// left for the stream, unread; a refused one gives an error of bounded length
// with nothing a terminal would act on, and an ambiguous name at most
// maxCandidates printable candidates.
func FuzzTunnelResponse(f *testing.F) {
	for _, s := range tunnelSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/api/tunnel", nil)
		src := &countReader{r: bytes.NewReader(data)}
		lim := &headerLimit{r: src, n: maxTunnelHeader}
		br := bufio.NewReader(lim)
		key, err := readTunnelResponse(br, req)
		if src.n > maxTunnelHeader {
			t.Fatalf("read %d bytes of the answer, more than %d", src.n, maxTunnelHeader)
		}
		if err == nil {
			if len(key) != 33 || !bytes.Contains(data, []byte(" 101")) ||
				!bytes.Contains(bytes.ToLower(data), []byte(hex.EncodeToString(key))) {
				t.Fatalf("accepted key %x from %q", key, data)
			}
			lim.n = -1
			rest, _ := io.ReadAll(br)
			if !bytes.HasSuffix(data, rest) {
				t.Fatalf("the stream after the headers is not the answer's tail")
			}
			return
		}
		msg := err.Error()
		if len(msg) > 4000 {
			t.Fatalf("error of %d bytes", len(msg))
		}
		assertPrintable(t, msg)
		var amb *registry.AmbiguousNameError
		if errors.As(err, &amb) {
			if len(amb.Candidates) == 0 || len(amb.Candidates) > maxCandidates {
				t.Fatalf("%d candidates", len(amb.Candidates))
			}
			for _, c := range amb.Candidates {
				assertPrintable(t, c.Name+c.Address+c.PublicKey)
			}
		}
	})
}

func assertPrintable(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("not UTF-8: %q", s)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) }); i >= 0 {
		t.Fatalf("control character in %q", s)
	}
}

// The seeds parse as the master meant them.
func TestTunnelResponseSeeds(t *testing.T) {
	seeds := tunnelSeeds()
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/api/tunnel", nil)
	parse := func(b []byte) ([]byte, error, []byte) {
		br := bufio.NewReader(bytes.NewReader(b))
		key, err := readTunnelResponse(br, req)
		rest, _ := io.ReadAll(br)
		return key, err, rest
	}
	if key, err, _ := parse(seeds[0]); err != nil || key[0] != 0x02 {
		t.Errorf("101: %x %v", key, err)
	}
	if _, err, rest := parse(seeds[1]); err != nil || !strings.HasPrefix(string(rest), "SSH-2.0-skyfleet") {
		t.Errorf("101 with a stream: %v, stream %q", err, rest)
	}
	var amb *registry.AmbiguousNameError
	if _, err, _ := parse(seeds[2]); !errors.As(err, &amb) || len(amb.Candidates) != 2 || amb.Candidates[1].Name != `kit-07\x1b[2J` {
		t.Errorf("409: %v", err)
	}
	for i, want := range map[int]string{3: "404 Not Found: registry: unknown node: no node", 4: "502 Bad Gateway: node sky1a", 6: "421 Misdirected Request", 7: "upgraded to \"other\"", 8: `\x1b]0;pwn\a`} {
		if _, err, _ := parse(seeds[i]); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("seed %d: %v, want %q", i, err, want)
		}
	}
}
