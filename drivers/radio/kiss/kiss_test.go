package kiss

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/internal/ptytest"
)

// FEND and FESC in the data go out as FESC TFEND and FESC TFESC (KISS §4), the
// port in the type byte's high nibble, and come back as they were.
func TestEscapes(t *testing.T) {
	data := []byte{0x01, FEND, 0x02, FESC, FESC, TFEND, FEND}
	b, err := Append(nil, Frame{Port: 3, Command: CmdData, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{FEND, 0x30, 0x01, FESC, TFEND, 0x02, FESC, TFESC, FESC, TFESC, TFEND, FESC, TFEND, FEND}
	if !bytes.Equal(b, want) {
		t.Fatalf("framed % x\nwant   % x", b, want)
	}
	f, err := NewDecoder(bytes.NewReader(b), 0).Next()
	if err != nil || f.Port != 3 || f.Command != CmdData || !bytes.Equal(f.Data, data) {
		t.Fatalf("decoded %+v %v", f, err)
	}
	if _, err := Append(nil, Frame{Port: 16}); !errors.Is(err, ErrFrame) {
		t.Errorf("port 16: %v", err)
	}
	if b, _ := Append(nil, Frame{Command: CmdReturn}); !bytes.Equal(b, []byte{FEND, 0xFF, FEND}) {
		t.Errorf("return: % x", b)
	}
}

// The decoder syncs on the first FEND, takes a FEND shared by two frames,
// skips FEND FEND, counts and drops a bad escape and an oversize frame without
// losing the frames around them, and drops a frame the stream cut off.
func TestDecoder(t *testing.T) {
	var s []byte
	s = append(s, "cmd:KISS ON\r\n"...) // a TNC's banner before KISS
	s = append(s, FEND, FEND, 0x00, 'a', FEND, 0x10, 'b', FEND)
	s = append(s, FEND, 0x00, 'x', FESC, 'q', 'y', FEND) // a bad escape
	s = append(s, FEND, 0x00)
	s = append(s, bytes.Repeat([]byte{'z'}, 20)...) // oversize for max 10
	s = append(s, FEND, 0x01, 50, FEND, 0xFF, FEND)
	s = append(s, FEND, 0x00, 'c', FESC, FEND) // FESC FEND: bad, and ends the frame
	s = append(s, 0x00, 'd', FEND)
	s = append(s, FEND, 0x00, 'e') // cut off
	d := NewDecoder(bytes.NewReader(s), 10)
	var got []string
	for {
		f, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strconv.Itoa(int(f.Port))+"/"+strconv.Itoa(int(f.Command))+":"+string(f.Data))
	}
	want := []string{"0/0:a", "1/0:b", "0/1:2", "0/255:", "0/0:d"}
	if len(got) != len(want) {
		t.Fatalf("frames %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("frame %d: %q, want %q", i, got[i], want[i])
		}
	}
	if st := d.Stats(); st.Frames != 5 || st.BadEscapes != 2 || st.Oversize != 1 {
		t.Errorf("stats %+v", st)
	}
}

// SetParams sends the five parameters in the TNC's units: TXDELAY 300 ms is 30,
// p = 0.25 is P = 63 (p = (P+1)/256), SlotTime 100 ms is 10.
func TestSetParams(t *testing.T) {
	a, b := net.Pipe()
	tnc := New(a)
	defer tnc.Close()
	go tnc.SetParams(2, Params{TXDelay: 300 * time.Millisecond, Persistence: 0.25, SlotTime: 100 * time.Millisecond, TXTail: 20 * time.Millisecond, FullDuplex: true})
	want := []byte{FEND, 0x21, 30, FEND, FEND, 0x22, 63, FEND, FEND, 0x23, 10, FEND, FEND, 0x24, 2, FEND, FEND, 0x25, 1, FEND}
	got := make([]byte, len(want))
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("% x (%v)\nwant % x", got, err, want)
	}
}

// A serial TNC through github.com/tarm/serial on a pseudo-terminal: a frame
// sent reaches the other side framed and escaped byte for byte, and one the
// TNC sends is received.
func TestSerialPTY(t *testing.T) {
	m, slave := ptytest.Open(t)
	tnc, err := OpenSerial(slave, 9600)
	if err != nil {
		t.Fatal(err)
	}
	defer tnc.Close()
	frame := []byte{0x82, 0xa0, FEND, FESC, 0x0a, 0x0d, 0x11, 0x13} // CR, LF, XON, XOFF pass untouched
	if err := tnc.Send(0, frame); err != nil {
		t.Fatal(err)
	}
	want, _ := Append(nil, Frame{Data: frame})
	got := make([]byte, len(want))
	m.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(m, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the pty's other side read % x (%v), want % x", got, err, want)
	}
	in, _ := Append(nil, Frame{Port: 1, Data: []byte("from the TNC\xc0")})
	if _, err := m.Write(in); err != nil {
		t.Fatal(err)
	}
	port, ax, err := tnc.Receive()
	if err != nil || port != 1 || string(ax) != "from the TNC\xc0" {
		t.Fatalf("received port %d %q %v", port, ax, err)
	}
	// Close ends a Receive waiting on a quiet line. With tarm's own
	// descriptor, which tarm makes blocking, it waited for the next byte,
	// forever: the descriptor read must stay non-blocking for the poller.
	sio, ok := tnc.rw.(*serialIO)
	if !ok {
		t.Fatalf("the TNC reads through %T", tnc.rw)
	}
	rc, err := sio.File.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	flags := 0
	rc.Control(func(fd uintptr) { flags, _ = unix.FcntlInt(fd, unix.F_GETFL, 0) })
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatal("the TNC reads a blocking descriptor: Close cannot end a Receive")
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := tnc.Receive()
		done <- err
	}()
	closed := make(chan error, 1)
	go func() { closed <- tnc.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close still waits for the blocked Receive after 30 s")
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Receive after Close returned a frame")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Receive still blocked 30 s after Close")
	}
}
