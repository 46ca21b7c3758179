//go:build kernelvm

// These tests need a kernel with the snd-aloop loopback card: they run in
// the virtual machine of e2e/kernelvm_test.go (TestALSALoopbackInVM), never
// on a host, which is why they build only with the kernelvm tag (and so never
// skip for want of a card).

package alsa

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/afsk"
	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/drivers/radio/modem"
)

// loopbackCard is the card number of snd-aloop's "Loopback" in
// /proc/asound/cards. What is played on its device 0 is captured on its
// device 1, and the other way round.
func loopbackCard(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/asound/cards")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var n int
		var id string
		if _, err := fmt.Sscanf(strings.TrimSpace(s.Text()), "%d [%s", &n, &id); err == nil && strings.HasPrefix(id, "Loopback") {
			return n
		}
	}
	t.Fatal("no Loopback card in /proc/asound/cards: load snd-aloop")
	return 0
}

func testFrames(t *testing.T, n int) [][]byte {
	t.Helper()
	src, _ := ax25.ParseAddress("N0CALL-1")
	var out [][]byte
	for i := range n {
		f, err := ax25.NewUI(ax25.Address{Call: "APZSKY"}, src, nil, []byte(fmt.Sprintf("frame %d through the kernel's loopback card \xc0\xdb", i))).Encode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// A transmission played on the loopback's device 0 with PCM.Write is
// captured on device 1 with PCM.Read and every frame decodes, at each of the
// modem's rates: the hardware parameters, the interleaved transfers and the
// capture's start all work against the kernel's ALSA core.
func TestLoopbackPCM(t *testing.T) {
	card := loopbackCard(t)
	for _, rate := range []int{22050, 44100, 48000} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			play, err := Open(fmt.Sprintf("/dev/snd/pcmC%dD0p", card), false, Params{Rate: rate, Channels: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer play.Close()
			rec, err := Open(fmt.Sprintf("/dev/snd/pcmC%dD1c", card), true, Params{Rate: rate, Channels: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d Hz: period %d frames, buffer %d frames", rate, rec.PeriodFrames(), rec.BufferFrames())
			frames := testFrames(t, 5)
			m := afsk.Modulator{Rate: rate}
			audio, err := m.Transmission(frames)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var got [][]byte
			d, err := afsk.NewDemodulator(rate, func(f []byte) {
				mu.Lock()
				got = append(got, append([]byte(nil), f...))
				mu.Unlock()
			})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				buf := make([]int16, rate/10)
				for {
					n, err := rec.Read(buf)
					d.Write(buf[:n])
					if err != nil {
						done <- err
						return
					}
				}
			}()
			start := time.Now()
			if err := play.Write(audio); err != nil {
				t.Fatal(err)
			}
			if err := play.Drain(); err != nil {
				t.Fatal(err)
			}
			played := time.Since(start)
			// Twice a period more for the last samples to reach the reader.
			deadline := time.Now().Add(2 * time.Second)
			for {
				mu.Lock()
				n := len(got)
				mu.Unlock()
				if n >= len(frames) || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			rec.Close()
			if err := <-done; err != errClosed {
				t.Errorf("Read after Close: %v, want errClosed", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != len(frames) {
				t.Fatalf("%d of %d frames decoded", len(got), len(frames))
			}
			for i := range frames {
				if !bytes.Equal(got[i], frames[i]) {
					t.Fatalf("frame %d: %x, want %x", i, got[i], frames[i])
				}
			}
			t.Logf("%d Hz: %d samples played in %v (Drain waited for them), %d frames decoded, xruns %d/%d",
				rate, len(audio), played.Round(time.Millisecond), len(got), play.Xruns(), rec.Xruns())
			if want := time.Duration(len(audio)) * time.Second / time.Duration(rate); played < want*9/10 {
				t.Errorf("Write and Drain returned after %v, before the %v of audio could have played", played, want)
			}
		})
	}
}

// Two of Skyfleet's modems on the two sides of the loopback card, each
// through Device (its capture and playback): frames sent by one are received
// by the other, both ways, with carrier sense from the captured audio. This
// is the afsk:///dev/snd/pcmC… listen entry's path short of the radio.
func TestLoopbackModems(t *testing.T) {
	card := loopbackCard(t)
	const rate = 22050
	da, err := OpenDevice(fmt.Sprintf("/dev/snd/pcmC%dD0", card), rate)
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenDevice(fmt.Sprintf("/dev/snd/pcmC%dD1", card), rate)
	if err != nil {
		t.Fatal(err)
	}
	a, err := modem.New(modem.Config{Rate: rate, Audio: da})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := modem.New(modem.Config{Rate: rate, Audio: db})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	receive := func(tnc *modem.TNC) []byte {
		ch := make(chan []byte, 1)
		go func() {
			f, _ := tnc.Receive()
			ch <- f
		}()
		select {
		case f := <-ch:
			return f
		case <-time.After(30 * time.Second):
			t.Fatal("nothing heard within 30 s")
			return nil
		}
	}
	frames := testFrames(t, 3)
	for _, f := range frames {
		if err := a.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range frames {
		if got := receive(b); !bytes.Equal(got, want) {
			t.Fatalf("A to B, frame %d: %x, want %x", i, got, want)
		}
	}
	reply := testFrames(t, 1)[0]
	if err := b.Send(reply); err != nil {
		t.Fatal(err)
	}
	if got := receive(a); !bytes.Equal(got, reply) {
		t.Fatalf("B to A: %x, want %x", got, reply)
	}
	t.Logf("A: %+v; B: %+v; xruns %d/%d", a.Stats(), b.Stats(), da.Xruns(), db.Xruns())
}
