//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/drivers/radio/kiss"
	"github.com/skyfleet/skyfleet/services/mesh/radio"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// direwolfPair runs two Dire Wolf TNCs joined by audio without a sound card:
// each transmits into ALSA's file plugin (over its null device), which writes
// the samples into a FIFO; a relay reads it and feeds the other TNC's stdin,
// its receive audio, at the real sample rate, with silence while nobody
// transmits (as a sound card would: with no samples at all, a receiver's
// carrier detect stays where the last transmission left it, and the other
// side waits for a clear channel forever). A serves KISS on TCP, B on a
// pseudo-terminal (-p), whose path it returns with A's address. Their logs go
// to the test's artefacts.
func direwolfPair(t *testing.T) (tcpAddr, pty string) {
	t.Helper()
	if _, err := exec.LookPath("direwolf"); err != nil {
		t.Fatal("direwolf not found: install the Debian package direwolf (scripts/deps.sh does)")
	}
	dir := t.TempDir()
	port := freePort(t)
	for _, f := range []string{"a2b", "b2a"} {
		if err := syscall.Mkfifo(filepath.Join(dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	start := func(name, out, in, extra string, args ...string) string {
		home := filepath.Join(dir, name)
		os.MkdirAll(home, 0o700)
		// ALSA reads ~/.asoundrc: the PCM "radio" writes raw samples to out.
		asound := fmt.Sprintf("pcm.radio {\n type file\n slave.pcm \"null\"\n file %q\n format \"raw\"\n}\n", filepath.Join(dir, out))
		os.WriteFile(filepath.Join(home, ".asoundrc"), []byte(asound), 0o600)
		conf := fmt.Sprintf("ADEVICE stdin radio\nARATE 22050\nACHANNELS 1\nCHANNEL 0\nMYCALL N0SKY-%d\nMODEM 1200\nAGWPORT 0\n%s\n", len(name), extra)
		cf := filepath.Join(home, "direwolf.conf")
		os.WriteFile(cf, []byte(conf), 0o600)
		// The FIFO opened read-write: an open for reading alone would wait
		// for the other TNC, which waits for this one.
		fifo, err := os.OpenFile(filepath.Join(dir, in), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		// What the other TNC transmitted, as raw PCM, for `skyfleet radio
		// decode --rate 22050` when a frame goes missing.
		tee, _ := os.Create(filepath.Join(artifacts(t), "audio-to-"+name+".raw"))
		go relayAudio(io.TeeReader(fifo, tee), pw, 22050)
		logPath := filepath.Join(artifacts(t), "direwolf-"+name+".log")
		logf, _ := os.Create(logPath)
		cmd := exec.Command("direwolf", append([]string{"-c", cf, "-t", "0"}, append(args, "-")...)...)
		cmd.Env = append(os.Environ(), "HOME="+home)
		cmd.Dir = home
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			fifo.Close() // ends the relay's reads
			pw.Close()   // and its writes
			pr.Close()
			logf.Close()
			tee.Close()
		})
		return logPath
	}
	aLog := start("a", "a2b", "b2a", fmt.Sprintf("KISSPORT %d", port))
	bLog := start("bb", "b2a", "a2b", "KISSPORT 0", "-p")
	ptyLine := regexp.MustCompile(`Virtual KISS TNC is available on (/dev/pts/\d+)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, _ := os.ReadFile(aLog)
		b, _ := os.ReadFile(bLog)
		m := ptyLine.FindSubmatch(b)
		if m != nil && strings.Contains(string(a), fmt.Sprintf("port %d", port)) {
			return fmt.Sprintf("127.0.0.1:%d", port), string(m[1])
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Dire Wolf TNCs did not start:\n--- A\n%s\n--- B\n%s", a, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var relayed atomic.Int64

// relayAudio copies 16-bit mono samples from src to dst at rate samples per
// second, 10 ms at a time, and plays silence while src is quiet; it ends when
// either side is closed. A sound card's line out never pauses: without the
// silence, a receiver's carrier detect would stay where the last transmission
// left it. But silence must not cut into a transmission: ALSA's null device
// hands the samples over in bursts at about the real rate, so a chunk that
// finds too few pending samples while the source is still busy waits for
// them rather than being padded with zeros.
func relayAudio(src io.Reader, dst io.Writer, rate int) {
	var mu sync.Mutex
	var pending []byte
	var lastRead time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 8192)
		for {
			n, err := src.Read(buf)
			relayed.Add(int64(n))
			mu.Lock()
			pending = append(pending, buf[:n]...)
			lastRead = time.Now()
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	chunk := 2 * (rate / 100) // whole samples: 2*22050/100 would be 441 bytes
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		out := make([]byte, chunk)
		mu.Lock()
		quiet := time.Since(lastRead) > 200*time.Millisecond
		if len(pending) < chunk && len(pending) > 0 && !quiet {
			mu.Unlock()
			continue // mid-transmission: wait for the rest rather than insert silence
		}
		// Whole samples only: half a sample now would shift every later
		// one by a byte, and the receiver would hear noise from then on.
		n := copy(out, pending[:len(pending)&^1])
		pending = pending[n:]
		mu.Unlock()
		if _, err := dst.Write(out); err != nil {
			return
		}
	}
}

// Issue 12, acceptance 4 (the frames): two Dire Wolf instances joined by
// audio through FIFOs, Skyfleet's KISS speaking to one over TCP and to the
// other over its pseudo-terminal: frames cross byte-identical both ways,
// FEND and FESC in the info and a 256-byte info field included.
func TestKISSThroughTwoDirewolves(t *testing.T) {
	addr, pty := direwolfPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := kiss.DialTCP(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := kiss.OpenSerial(pty, 9600)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	frame := func(src string, info []byte) []byte {
		s, _ := ax25.ParseAddress(src)
		f, err := ax25.NewUI(ax25.Address{Call: "APZSKY"}, s, nil, info).Encode()
		if err != nil {
			t.Fatal(err)
		}
		return f[:len(f)-2] // KISS carries frames without the FCS: the TNC adds it
	}
	long := bytes.Repeat([]byte("0123456789abcdef"), 16)
	for _, c := range []struct {
		name     string
		from, to *kiss.TNC
		frame    []byte
	}{
		{"TCP to pty", a, b, frame("N0SKY-1", []byte("over the air \xc0\xdb\xc0"))},
		{"pty to TCP", b, a, frame("N0SKY-2", []byte("and back \xdb\xdc\xdd"))},
		{"TCP to pty, 256 bytes", a, b, frame("N0SKY-1", long)},
	} {
		got := make(chan []byte, 1)
		go func() {
			_, f, err := c.to.Receive()
			if err != nil {
				t.Error(err)
			}
			got <- bytes.Clone(f)
		}()
		start := time.Now()
		if err := c.from.Send(0, c.frame); err != nil {
			t.Fatal(err)
		}
		select {
		case f := <-got:
			if !bytes.Equal(f, c.frame) {
				t.Errorf("%s: received\n% x\nsent\n% x", c.name, f, c.frame)
			}
			t.Logf("%s: %d bytes across in %v", c.name, len(c.frame), time.Since(start).Round(time.Millisecond))
		case <-time.After(30 * time.Second):
			t.Logf("relayed %d bytes", relayed.Load())
			t.Fatalf("%s: nothing arrived in 30 s (logs in %s)", c.name, artifacts(t))
		}
	}
}

// The radio transport (services/mesh/radio) over the same two Dire Wolf TNCs:
// a datagram of the router's MTU, cut into UI frames from one callsign to the
// other, crosses whole through real TNCs and their modems, an ID frame ahead
// of it; a short one comes back. The time it took is logged for the README.
func TestRadioTransportThroughTwoDirewolves(t *testing.T) {
	addr, pty := direwolfPair(t)
	callA, _ := ax25.ParseAddress("N0SKY-1")
	callB, _ := ax25.ParseAddress("N0SKY-2")
	a, err := radio.Listen("kiss+tcp://"+addr, callA, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := radio.Listen("kiss+serial://"+pty+"?baud=9600", callB, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	read := func(tr *radio.Transport) ([]byte, transport.Endpoint) {
		t.Helper()
		type res struct {
			b    []byte
			from transport.Endpoint
		}
		ch := make(chan res, 1)
		go func() {
			buf := make([]byte, 2048)
			n, from, err := tr.ReadFrom(buf)
			if err != nil {
				t.Error(err)
			}
			ch <- res{buf[:n], from}
		}()
		select {
		case r := <-ch:
			return r.b, r.from
		case <-time.After(2 * time.Minute):
			t.Fatalf("no datagram in 2 minutes (logs in %s)", artifacts(t))
		}
		return nil, transport.Endpoint{}
	}
	big := make([]byte, a.MTU(transport.Endpoint{}))
	for i := range big {
		big[i] = byte(i*31 + 7)
	}
	start := time.Now()
	if err := a.WriteTo(big, transport.NamedEndpoint("N0SKY-2")); err != nil {
		t.Fatal(err)
	}
	got, from := read(b)
	took := time.Since(start)
	if !bytes.Equal(got, big) || from.Name() != "N0SKY-1" {
		t.Fatalf("%d bytes from %v", len(got), from)
	}
	t.Logf("a %d-byte datagram in %d frames (and an ID) crossed in %v: %.0f bit/s of datagram",
		len(big), a.Stats().FramesOut-1, took.Round(time.Millisecond), float64(8*len(big))/took.Seconds())
	if err := b.WriteTo([]byte("73"), transport.NamedEndpoint("N0SKY-1")); err != nil {
		t.Fatal(err)
	}
	if got, from := read(a); string(got) != "73" || from.Name() != "N0SKY-2" {
		t.Fatalf("%q from %v", got, from)
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.IDs != 1 || sb.IDs != 1 || sb.DatagramsIn != 1 || sa.DatagramsIn != 1 || sb.Foreign < 1 {
		t.Fatalf("stats: a %+v\nb %+v", sa, sb)
	}
}
