package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
)

// encodeLines are the frames of the interop test: digipeater paths, SSIDs,
// the longest callsigns, and info bytes that KISS and HDLC treat specially
// (FEND, FESC, the flag 0x7E, runs of ones that need stuffing).
var encodeLines = []string{
	"N0CALL-7>APRS,WIDE1-1,WIDE2-2:!4903.50N/07201.75W-Test 001234",
	"W1AW>CQ:hello <0xc0><0xdb> {FEND} ~~~ <0xff><0xff><0xff>",
	"KB1ABC-15>APZSKY,RELAY,WIDE3-3,WIDE4-4,WIDE5-5,WIDE6-6,WIDE7-7:>Skyfleet test with the longest path <0x7e><0x7e>",
	"VE3XYZ-1>ID:" + strings.Repeat("0123456789", 25),
}

// tool fails the test when a program it checks against is missing:
// scripts/deps.sh installs them, and CI runs as root with them.
func tool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: install the Debian package %s (scripts/deps.sh does)", name, pkg)
	}
}

// Issue 12, acceptance 2: frames written by `skyfleet radio encode` decode with
// Dire Wolf's atest and with multimon-ng (AFSK1200), every frame, at 22050,
// 44100 and 48000 Hz; each decoder's text gives back the frame's addresses and
// info byte for byte.
func TestRadioEncodeDecodesElsewhere(t *testing.T) {
	tool(t, "atest", "direwolf")
	tool(t, "multimon-ng", "multimon-ng")
	tool(t, "sox", "sox") // multimon-ng reads WAV files through sox
	var want, wantRaw []string
	for _, l := range encodeLines {
		f, err := ax25.ParseTNC2(l)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, f.TNC2())
		wantRaw = append(wantRaw, strings.SplitN(f.TNC2(), ":", 2)[0]+":"+string(f.Info))
	}
	atestLine := regexp.MustCompile(`(?m)^\[0\] (.*)$`)
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*[mJ]")
	for _, rate := range []int{22050, 44100, 48000} {
		file := filepath.Join(t.TempDir(), fmt.Sprintf("frames-%d.wav", rate))
		if err := radioEncode([]string{"--rate", fmt.Sprint(rate), "-o", file}, strings.NewReader(strings.Join(encodeLines, "\n")+"\n")); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("atest", file).CombinedOutput()
		if err != nil {
			t.Fatalf("atest at %d Hz: %v\n%s", rate, err, out)
		}
		got := atestLine.FindAllStringSubmatch(ansi.ReplaceAllString(string(out), ""), -1)
		if len(got) != len(want) {
			t.Errorf("atest decoded %d of %d frames at %d Hz:\n%s", len(got), len(want), rate, out)
		}
		for i := range min(len(got), len(want)) {
			// Dire Wolf escapes fewer bytes than TNC2() does (0xc0 and
			// 0xdb go out raw, 0xff as <0xff>): compare what the lines
			// say, parsed back to bytes.
			g, err := ax25.ParseTNC2(strings.TrimSpace(got[i][1]))
			if err != nil || g.TNC2() != want[i] {
				t.Errorf("atest at %d Hz, frame %d:\n%q\nwant\n%q (%v)", rate, i, got[i][1], want[i], err)
			}
		}
		out, err = exec.Command("multimon-ng", "-q", "-m", "-t", "wav", "-a", "AFSK1200", "-A", file).Output()
		if err != nil {
			t.Fatalf("multimon-ng at %d Hz: %v\n%s", rate, err, out)
		}
		var mm []string
		for _, l := range strings.Split(string(out), "\n") {
			if s, ok := strings.CutPrefix(l, "APRS: "); ok {
				mm = append(mm, s)
			}
		}
		if len(mm) != len(wantRaw) {
			t.Errorf("multimon-ng decoded %d of %d frames at %d Hz:\n%s", len(mm), len(wantRaw), rate, out)
		}
		for i := range min(len(mm), len(wantRaw)) {
			if !bytes.Equal([]byte(mm[i]), []byte(wantRaw[i])) {
				t.Errorf("multimon-ng at %d Hz, frame %d:\n%q\nwant\n%q", rate, i, mm[i], wantRaw[i])
			}
		}
	}
}

// Bad input is refused with the line at fault, and nothing is written.
func TestRadioEncodeRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ in, want string }{
		{"N0CALL>APRS:ok\nnot a frame\n", "line 2"},
		{"# only a comment\n\n", "no frames"},
		{"N0CALL-16>APRS:x\n", "line 1"},
	} {
		file := filepath.Join(dir, "x.wav")
		err := radioEncode([]string{"-o", file}, strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
		if _, serr := exec.Command("test", "-e", file).Output(); serr == nil {
			t.Errorf("%q: a file was written", c.in)
		}
	}
}

// genPackets runs Dire Wolf's gen_packets with args and returns the WAV file
// it wrote.
func genPackets(t *testing.T, args ...string) string {
	t.Helper()
	tool(t, "gen_packets", "direwolf")
	out := filepath.Join(t.TempDir(), "gen.wav")
	if b, err := exec.Command("gen_packets", append(args, "-o", out)...).CombinedOutput(); err != nil {
		t.Fatalf("gen_packets %v: %v\n%s", args, err, b)
	}
	return out
}

// decodeFile runs skyfleet radio decode on file and returns its lines and its
// count line.
func decodeFile(t *testing.T, file string) ([]string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := radioDecode([]string{file}, nil, &out, &errOut); err != nil {
		t.Fatalf("radio decode %s: %v", file, err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if out.Len() == 0 {
		lines = nil
	}
	return lines, strings.TrimSpace(errOut.String())
}

// Issue 12, acceptance 3: skyfleet radio decode finds every frame of clean
// gen_packets output at each rate, as the TNC2 lines gen_packets was given
// (gen_packets keeps each line's newline in the info field).
func TestRadioDecodeDirewolf(t *testing.T) {
	src := filepath.Join(t.TempDir(), "frames.txt")
	var want []string
	var text strings.Builder
	for i := range 30 {
		l := fmt.Sprintf("KB1ABC-%d>APZSKY,WIDE1-1,WIDE2-%d:frame %d %s", i%15+1, i%3+1, i, strings.Repeat("abc", i*3))
		text.WriteString(l + "\n")
		want = append(want, l+"<0x0a>")
	}
	if err := os.WriteFile(src, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rate := range []int{22050, 44100, 48000} {
		got, summary := decodeFile(t, genPackets(t, "-r", fmt.Sprint(rate), src))
		if len(got) != len(want) {
			t.Errorf("%d Hz: %d of %d frames (%s)", rate, len(got), len(want), summary)
		}
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("%d Hz, frame %d: %q, want %q", rate, i, got[i], want[i])
			}
		}
	}
}

// Issue 12, acceptance 3: on gen_packets -n 100 -r 22050, 100 frames with the
// noise rising frame by frame, skyfleet radio decode finds at least as many as
// Dire Wolf's atest with its default demodulator (43 with Dire Wolf 1.6). The
// counts of both, and multimon-ng's, are logged for the README.
func TestRadioDecodeNoisy(t *testing.T) {
	tool(t, "atest", "direwolf")
	tool(t, "multimon-ng", "multimon-ng")
	for _, rate := range []string{"22050", "44100", "48000"} {
		file := genPackets(t, "-n", "100", "-r", rate)
		out, err := exec.Command("atest", file).CombinedOutput()
		if err != nil {
			t.Fatalf("atest: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`(\d+) packets decoded`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("atest said:\n%s", out)
		}
		atest, _ := strconv.Atoi(string(m[1]))
		mm, err := exec.Command("multimon-ng", "-q", "-m", "-t", "wav", "-a", "AFSK1200", "-A", file).Output()
		if err != nil {
			t.Fatalf("multimon-ng: %v", err)
		}
		multimon := strings.Count(string(mm), "APRS: ")
		got, summary := decodeFile(t, file)
		t.Logf("gen_packets -n 100 -r %s: skyfleet %d, Dire Wolf atest %d, multimon-ng %d (%s)", rate, len(got), atest, multimon, summary)
		if len(got) < atest {
			t.Errorf("%s Hz: skyfleet decoded %d frames, atest %d", rate, len(got), atest)
		}
		for _, l := range got {
			if !strings.HasPrefix(l, "WB2OSZ-15>TEST:,The quick brown fox jumps over the lazy dog!") {
				t.Errorf("a frame gen_packets did not send: %q", l)
			}
		}
	}
}

// radio decode streams: a frame is printed as soon as its audio has arrived,
// while the input is still open (a live recording piped in), and the input is
// never held whole.
func TestRadioDecodeStreams(t *testing.T) {
	line := "N0CALL-7>APZSKY:streamed"
	file := filepath.Join(t.TempDir(), "one.wav")
	if err := radioEncode([]string{"--rate", "22050", "-o", file}, strings.NewReader(line+"\n")); err != nil {
		t.Fatal(err)
	}
	audio, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		err := radioDecode([]string{"-"}, inR, outW, &errOut)
		outW.Close()
		done <- err
	}()
	go func() {
		inW.Write(audio)
		inW.Write(make([]byte, 2*22050)) // a second of silence; the input stays open
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case got := <-lines:
		if got != line {
			t.Fatalf("decoded %q, want %q", got, line)
		}
	case err := <-done:
		t.Fatalf("decode ended before its input did: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("no frame printed within a minute while the input stayed open")
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(errOut.String(), "1 frames decoded") {
		t.Fatalf("summary %q", errOut.String())
	}
}
