//go:build e2e

package e2e

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/afsk"
	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
)

// modemRate is the audio sample rate between the two modems.
const modemRate = 22050

// TestRadioModemBothEnds is issue 12's acceptance 5: two whole nodes, each on
// Skyfleet's own AFSK 1200 modem (afsk+fifo listen entries), their audio
// joined through FIFOs and nothing else. A message in clear crosses into B's
// inbox and B's receipt comes back; a stream carries a file across (sendFile:
// 2 KB, 20 KB in `make soak`); a copy of one of A's frames with its
// signature broken, played into B's audio, is dropped and counted while a
// second message crosses. TestRadioModemNoCallsign is the rest of acceptance
// 5: a node without a callsign transmits nothing and says why.
func TestRadioModemBothEnds(t *testing.T) {
	// Parallel: these tests mostly wait for a 1200 bit/s channel; they run
	// together after the others, and CI waits for the longest, not the sum.
	t.Parallel()
	dir := t.TempDir()
	fifo := func(name string) string {
		p := filepath.Join(dir, name)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	aOut, bIn, bOut, aIn := fifo("a-out"), fifo("b-in"), fifo("b-out"), fifo("a-in")
	// A to B through a relay that can play a forged frame into B's audio;
	// B to A straight through.
	forger := newForger(t)
	go forger.relay(openFIFO(t, aOut), openFIFO(t, bIn))
	go func() { io.Copy(openFIFO(t, aIn), openFIFO(t, bOut)) }()

	dirA, dirB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	ka, kb := radioKey(t, dirA), radioKey(t, dirB)
	entry := func(in, out string) string {
		return "afsk+fifo://" + in + "?out=" + out + "&rate=" + strconv.Itoa(modemRate)
	}
	start := time.Now()
	a := radioNode(t, "A", entry(aIn, aOut), "N0SKY-1", ka, dirA, "afsk://N0SKY-2#"+kb.PublicKeyHex())
	b := radioNode(t, "B", entry(bIn, bOut), "N0SKY-2", kb, dirB, "afsk://N0SKY-1#"+ka.PublicKeyHex())
	waitRadioLink(t, a, 2*time.Minute)
	t.Logf("radio link up after %v", time.Since(start).Round(time.Millisecond))

	// A message in clear, and its receipt.
	_, inInbox, receipted := sendClearMessage(t, a, b, kb.PublicKey(), "CQ from A over the built-in modem")
	t.Logf("message in clear: in B's inbox %v after sending, A saw its receipt after %v", inInbox.Round(time.Millisecond), receipted.Round(time.Millisecond))

	// A file over a stream, A to B.
	size, took := sendFile(t, a, b, kb.PublicKey())
	t.Logf("file of %d bytes: %v, %.0f bit/s of goodput", size, took.Round(time.Millisecond), float64(8*size)/took.Seconds())

	// A forged frame: one of A's, its counter changed under the old
	// signature, played into B's audio while A sends another message. B
	// drops and counts it; the message arrives all the same.
	before := b.Router.Counters()["drop_auth"]
	forger.arm()
	_, inInbox, _ = sendClearMessage(t, a, b, kb.PublicKey(), "still here after the forgery")
	select {
	case <-forger.played:
	case <-time.After(3 * time.Minute):
		t.Fatal("no frame of A's to forge in 3 minutes")
	}
	waitFor(t, time.Minute, "count of the forged frame at B", func() bool { return b.Router.Counters()["drop_auth"] > before })
	t.Logf("a second message on the warm link: in B's inbox after %v; B dropped %d forged frame(s) (drop_auth)",
		inInbox.Round(time.Millisecond), b.Router.Counters()["drop_auth"]-before)
	t.Logf("A's radio link: %s", radioLinkState(a))
}

// TestRadioModemNoCallsign: a node whose fleet.toml names a radio channel but
// no [radio] callsign says so in config_errors, and its transmitter stays
// silent: its audio out carries no frame while the router tries to link.
func TestRadioModemNoCallsign(t *testing.T) {
	// Parallel: these tests mostly wait for a 1200 bit/s channel; they run
	// together after the others, and CI waits for the longest, not the sum.
	t.Parallel()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	for _, p := range []string{in, out} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var frames atomic.Int64
	d, err := afsk.NewDemodulator(modemRate, func([]byte) { frames.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	heard := make(chan int64, 1)
	outF := openFIFO(t, out)
	go func() {
		var n int64
		buf := make([]byte, 4410)
		samples := make([]int16, len(buf)/2)
		for {
			k, err := io.ReadFull(outF, buf)
			n += int64(k)
			for i := range k / 2 {
				samples[i] = int16(binary.LittleEndian.Uint16(buf[2*i:]))
			}
			d.Write(samples[:k/2])
			if err != nil || n >= 2*modemRate*20 { // 20 s of audio
				heard <- n
				return
			}
		}
	}()
	// Nobody plays into its receiver: a writer keeps the FIFO open.
	openFIFO(t, in)
	ck, other := radioKey(t, filepath.Join(dir, "c")), radioKey(t, filepath.Join(dir, "other"))
	c := radioNode(t, "C", "afsk+fifo://"+in+"?out="+out+"&rate="+strconv.Itoa(modemRate), "", ck, filepath.Join(dir, "c"),
		"afsk://N0SKY-2#"+other.PublicKeyHex())
	var said bool
	for _, p := range c.State().ConfigErrors {
		said = said || strings.Contains(p.Message, "receive only") && strings.Contains(p.Message, "[radio] callsign")
	}
	if !said {
		t.Fatalf("config_errors %+v do not say the channel is receive only", c.State().ConfigErrors)
	}
	select {
	case n := <-heard:
		if n < 2*modemRate*20 {
			t.Fatalf("the transmit audio ended after %d bytes", n)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("20 s of transmit audio did not come in 2 minutes")
	}
	if f := frames.Load(); f != 0 {
		t.Fatalf("a node without a callsign put %d frames on the air", f)
	}
	// /status shows the channel, receive only, with what it refused.
	st := c.State().Radio
	if len(st) != 1 || st[0].Callsign != "" || st[0].Stats.NoCallsign == 0 || st[0].Stats.FramesOut != 0 {
		t.Fatalf("/status radio %+v: want one channel without a callsign that refused datagrams and sent no frame", st)
	}
	refused := st[0].Stats.NoCallsign
	t.Logf("20 s of C's transmit audio: no frames; %d datagrams refused", refused)
}

// openFIFO opens a FIFO read-write (an open for one side alone waits for the
// other) and closes it when the test ends.
func openFIFO(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// forger relays 16-bit PCM from one modem to the other, demodulating it on
// the way; once armed, it takes the next single-frame clear datagram it
// hears, changes the datagram's counter (which the signature covers) and its
// fragment number, and plays that frame into the audio in a quiet moment.
type forger struct {
	t       *testing.T
	mu      sync.Mutex
	armed   bool
	audio   []int16 // the forged transmission waiting to be played
	playing bool    // it has started
	played  chan struct{}
	once    sync.Once
}

func newForger(t *testing.T) *forger { return &forger{t: t, played: make(chan struct{})} }

// arm makes the forger take the next frame it can forge.
func (f *forger) arm() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = true
}

// heard is the demodulator's callback: frame is an AX.25 frame with its FCS.
func (f *forger) heard(frame []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed || f.audio != nil {
		return
	}
	fr, err := ax25.Decode(frame)
	if err != nil || len(fr.Info) < 5+16+65 || fr.Info[0] != 'S' || fr.Info[4] != 0 || fr.Info[5] != 6 {
		return // not a whole clear-data datagram in one frame
	}
	info := append([]byte(nil), fr.Info...)
	info[2] ^= 0x80 // another datagram number: not a copy to drop
	ctr := binary.BigEndian.Uint64(info[5+8:])
	binary.BigEndian.PutUint64(info[5+8:], ctr+1000) // ahead of the window, under the old signature
	forged, err := ax25.NewUI(fr.Dst, fr.Src, nil, info).Encode()
	if err != nil {
		f.t.Error(err)
		return
	}
	m := afsk.Modulator{Rate: modemRate}
	f.audio, err = m.Transmission([][]byte{forged})
	if err != nil {
		f.t.Error(err)
	}
}

// relay copies src to dst, 20 ms at a time, replacing quiet stretches with
// the forged transmission when one waits.
func (f *forger) relay(src io.Reader, dst io.Writer) {
	d, err := afsk.NewDemodulator(modemRate, f.heard)
	if err != nil {
		f.t.Error(err)
		return
	}
	buf := make([]byte, 2*modemRate/50)
	samples := make([]int16, len(buf)/2)
	quiet := 0
	for {
		if _, err := io.ReadFull(src, buf); err != nil {
			return
		}
		loud := false
		for i := range samples {
			samples[i] = int16(binary.LittleEndian.Uint16(buf[2*i:]))
			loud = loud || samples[i] > 1000 || samples[i] < -1000
		}
		d.Write(samples)
		if loud {
			quiet = 0
		} else {
			quiet++
		}
		f.mu.Lock()
		// Start in a quiet moment (200 ms of silence); once started, play
		// it whole over whatever A sends meanwhile (A's frame is lost then,
		// and its link sends it again).
		if len(f.audio) > 0 && (quiet > 10 || f.playing) {
			f.playing = true
			n := copy(samples, f.audio)
			f.audio = f.audio[n:]
			for i := n; i < len(samples); i++ {
				samples[i] = 0
			}
			for i, s := range samples {
				binary.LittleEndian.PutUint16(buf[2*i:], uint16(s))
			}
			if len(f.audio) == 0 {
				f.audio = []int16{} // played: not nil, so heard forges no more
				f.once.Do(func() { close(f.played) })
			}
		}
		f.mu.Unlock()
		if _, err := dst.Write(buf); err != nil {
			return
		}
	}
}
