package modem

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
)

// events is a shared log of keyings, in the order they happened.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.log)
}

type logKeyer struct {
	name string
	ev   *events
	on   bool
}

func (k *logKeyer) Key(on bool) error {
	if on != k.on {
		k.on = on
		if on {
			k.ev.add(k.name + " on")
		} else {
			k.ev.add(k.name + " off")
		}
	}
	return nil
}

func (k *logKeyer) Close() error { return k.Key(false) }

// pair is two TNCs whose line outs feed each other's capture, as two radios
// on one channel.
func pair(t *testing.T, rate int, ev *events) (a, b *TNC) {
	t.Helper()
	abR, abW := io.Pipe()
	baR, baW := io.Pipe()
	var err error
	a, err = New(Config{Rate: rate, Audio: NewStream(rate, baR, abW), Keyer: &logKeyer{name: "a", ev: ev}})
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(Config{Rate: rate, Audio: NewStream(rate, abR, baW), Keyer: &logKeyer{name: "b", ev: ev}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func frame(t *testing.T, src string, info string) []byte {
	t.Helper()
	s, _ := ax25.ParseAddress(src)
	f, err := ax25.NewUI(ax25.Address{Call: "APZSKY"}, s, nil, []byte(info)).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// receive returns the next frame tnc hears, failing after a minute.
func receive(t *testing.T, tnc *TNC) []byte {
	t.Helper()
	ch := make(chan []byte, 1)
	go func() {
		f, _ := tnc.Receive()
		ch <- f
	}()
	select {
	case f := <-ch:
		return f
	case <-time.After(time.Minute):
		t.Fatal("nothing heard within a minute")
	}
	return nil
}

// Frames sent by one sound-card TNC are heard byte for byte by the other
// through real-time audio streams, several in one keying; the channel's
// figures (airtime, busy time) count them.
func TestFramesCrossTheAudio(t *testing.T) {
	ev := &events{}
	a, b := pair(t, 22050, ev)
	want := [][]byte{frame(t, "N0CALL-1", "first"), frame(t, "N0CALL-1", "second, with FEND \xc0 and a flag ~")}
	for _, f := range want {
		if err := a.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	for i := range want {
		if got := receive(t, b); !bytes.Equal(got, want[i]) {
			t.Fatalf("frame %d: %x, want %x", i, got, want[i])
		}
	}
	// The frames are heard before the sender's TXTAIL has played out.
	deadline := time.Now().Add(time.Minute)
	for a.Stats().FramesOut < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.FramesOut != 2 || sa.Airtime < 300*time.Millisecond || sa.Drops != 0 {
		t.Fatalf("sender: %+v", sa)
	}
	if sb.Frames != 2 || sb.BusyTime < 300*time.Millisecond || sb.BusyTime > sa.Airtime+time.Second {
		t.Fatalf("receiver: %+v (sender keyed %v)", sb, sa.Airtime)
	}
	if got := b.Send(frame(t, "N0CALL-2", "reply")); got != nil {
		t.Fatal(got)
	}
	if f := receive(t, a); !bytes.Contains(f, []byte("reply")) {
		t.Fatalf("reply %x", f)
	}
}

// Carrier sense: a station that has something to send while the other
// transmits waits until the channel is clear, so the two keyings never
// overlap.
func TestCarrierSenseWaits(t *testing.T) {
	ev := &events{}
	a, b := pair(t, 22050, ev)
	var long [][]byte
	for i := range 2 {
		long = append(long, frame(t, "N0CALL-1", fmt.Sprintf("%d %s", i, bytes.Repeat([]byte("x"), 120))))
	}
	for _, f := range long {
		a.Send(f)
	}
	deadline := time.Now().Add(time.Minute)
	for !b.busy() {
		if time.Now().After(deadline) {
			t.Fatal("b never heard a's carrier")
		}
		time.Sleep(time.Millisecond)
	}
	b.Send(frame(t, "N0CALL-2", "after you"))
	if f := receive(t, a); !bytes.Contains(f, []byte("after you")) {
		t.Fatalf("a heard %x", f)
	}
	ev.mu.Lock()
	log := append([]string(nil), ev.log...)
	ev.mu.Unlock()
	if len(log) < 3 || log[0] != "a on" || log[1] != "a off" || log[2] != "b on" {
		t.Fatalf("keyings %v: b keyed over a", log)
	}
}
