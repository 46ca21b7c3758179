// Package ptytest makes pseudo-terminals for tests of serial devices: a KISS
// TNC's port, a PTT line, as Dire Wolf's -p offers one.
package ptytest

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// Open returns the master side of a new pseudo-terminal and the path of its
// slave, as Dire Wolf's -p makes one for a KISS client, both sides in raw
// mode. The test fails where there are none; the master is closed when it
// ends.
func Open(t testing.TB) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	// Raw mode on the master's side too, so the line discipline passes
	// every byte as it is.
	Raw(t, int(m.Fd()))
	return m, "/dev/pts/" + strconv.Itoa(n)
}

// Raw puts the terminal fd in raw mode: no echo, no line editing or
// signals, no CR/LF translation on input or output, so each side reads
// exactly the bytes the other wrote. It fails t if the fd is no terminal.
func Raw(t testing.TB, fd int) {
	t.Helper()
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
}
