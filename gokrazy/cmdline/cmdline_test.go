package cmdline

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// piCmdline is /proc/cmdline of a Raspberry Pi 3B booting a Skyfleet card: the
// firmware prepends its own parameters (with its double space) to cmdline.txt.
const piCmdline = "coherent_pool=1M 8250.nr_uarts=1 snd_bcm2835.enable_headphones=0 bcm2708_fb.fbwidth=0 " +
	"bcm2708_fb.fbheight=0 bcm2708_fb.fbswap=1 vc_mem.mem_base=0x3ec00000 vc_mem.mem_size=0x40000000  " +
	"console=tty1 console=ttyS1,115200 panic=10 oops=panic loglevel=4 skyfleet.board=rpi3b skyfleet.slot=a\n"

// raspiosCmdline is Raspberry Pi OS's stock cmdline.txt behind the firmware's part.
const raspiosCmdline = "coherent_pool=1M 8250.nr_uarts=1 snd_bcm2835.enable_compat_alsa=0 snd_bcm2835.enable_hdmi=1 " +
	"console=ttyS1,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet splash " +
	"plymouth.ignore-serial-consoles\n"

func TestPiCmdline(t *testing.T) {
	ps, rest := Parse(piCmdline)
	if rest != "" || len(ps) != 15 {
		t.Fatalf("%d params, rest %q: %q", len(ps), rest, ps)
	}
	m := ps.Map()
	for k, want := range map[string]string{
		"skyfleet.board": "rpi3b", "skyfleet.slot": "a",
		"console":         "ttyS1,115200", // the last one wins
		"8250.nr_uarts":   "1",
		"vc_mem.mem_base": "0x3ec00000",
		"coherent_pool":   "1M",
	} {
		if m[k] != want {
			t.Errorf("%s = %q, want %q", k, m[k], want)
		}
	}
	if len(m) != 14 {
		t.Errorf("Map has %d names, want 14 (console twice): %v", len(m), m)
	}
	ps, _ = Parse(raspiosCmdline)
	if !ps.Has("rootwait") || !ps.Has("quiet") || ps.Has("root=PARTUUID") {
		t.Errorf("flags: %q", ps)
	}
	if v, ok := ps.Get("rootwait"); ok {
		t.Errorf("rootwait has value %q; it is a flag", v)
	}
	if v, _ := ps.Get("root"); v != "PARTUUID=4e639091-02" {
		t.Errorf("root = %q: only the first '=' separates", v)
	}
}

// The expected results are worked out by hand from the kernel's next_arg
// (lib/cmdline.c) and parse_args (kernel/params.c), not taken from Parse.
func TestKernelRules(t *testing.T) {
	v := func(n, val string) Param { return Param{Name: n, Value: val, HasValue: true} }
	f := func(n string) Param { return Param{Name: n} }
	for _, c := range []struct {
		line string
		want Params
		rest string
	}{
		{"", nil, ""},
		{" \t\n", nil, ""},
		{"quiet", Params{f("quiet")}, ""},
		{"  a=1   b  ", Params{v("a", "1"), f("b")}, ""},
		// Separators are the kernel's isspace, 0xA0 included.
		{"a=1\tb=2\nc=3\vd=4\fe=5\rf=6\xa0g=7", Params{v("a", "1"), v("b", "2"), v("c", "3"), v("d", "4"), v("e", "5"), v("f", "6"), v("g", "7")}, ""},
		// Quotes group; the value's opening quote and the word's last quote go.
		{`a="b c" d`, Params{v("a", "b c"), f("d")}, ""},
		{`"a=b c" d`, Params{v("a", "b c"), f("d")}, ""},
		{`"quiet x"`, Params{f("quiet x")}, ""},
		// A quote inside a value stays; there are no escapes.
		{`a=b"c d" e`, Params{v("a", `b"c d"`), f("e")}, ""},
		{`foo="bar"baz"`, Params{v("foo", `bar"baz`)}, ""},
		{`"a b"c d`, Params{f(`a b"c`), f("d")}, ""},
		{`a=\"b c\"`, Params{v("a", `\"b c\"`)}, ""},
		// An unterminated quote runs to the end of the line.
		{`a="b c`, Params{v("a", "b c")}, ""},
		{`"x y`, Params{f("x y")}, ""},
		// Only an '=' after the first byte separates, and only the first one.
		{"=x", Params{f("=x")}, ""},
		{"==x", Params{v("=", "x")}, ""},
		{"a==b", Params{v("a", "=b")}, ""},
		{"a=", Params{v("a", "")}, ""},
		{`a="`, Params{v("a", "")}, ""},
		{`a=""`, Params{v("a", "")}, ""},
		{`"`, Params{f("")}, ""},
		{`""`, Params{f("")}, ""},
		// "--" ends the kernel's parameters, quoted or not.
		{"quiet -- init args  here\n", Params{f("quiet")}, "init args  here\n"},
		{`a -- b -- c`, Params{f("a")}, "b -- c"},
		{`a "--" b`, Params{f("a")}, "b"},
		{"a --x b", Params{f("a"), f("--x"), f("b")}, ""},
		{"a --=1", Params{f("a"), v("--", "1")}, ""},
		// A C string ends at NUL.
		{"a=1\x00b=2", Params{v("a", "1")}, ""},
	} {
		got, rest := Parse(c.line)
		if !reflect.DeepEqual(got, c.want) || rest != c.rest {
			t.Errorf("Parse(%q) = %q, rest %q; want %q, rest %q", c.line, got, rest, c.want, c.rest)
		}
	}
}

func TestGetHasMap(t *testing.T) {
	ps, _ := Parse("console=tty1 quiet console=ttyS0 skyfleet.watchdog=off")
	if v, ok := ps.Get("console"); !ok || v != "ttyS0" {
		t.Errorf("Get(console) = %q, %v; want the last, ttyS0", v, ok)
	}
	if _, ok := ps.Get("quiet"); ok {
		t.Error("Get(quiet) found a value for a flag")
	}
	if !ps.Has("quiet") || ps.Has("console=tty1") || ps.Has("skyfleet-watchdog") {
		t.Error("Has")
	}
	if m := ps.Map(); len(m) != 2 || m["console"] != "ttyS0" || m["skyfleet.watchdog"] != "off" {
		t.Errorf("Map = %v", m)
	}
}

func TestParamString(t *testing.T) {
	for _, c := range []struct {
		p    Param
		want string
	}{
		{Param{Name: "quiet"}, "quiet"},
		{Param{Name: "a", Value: "b", HasValue: true}, "a=b"},
		{Param{Name: "a", HasValue: true}, "a="},
		{Param{Name: "a", Value: "b c", HasValue: true}, `a="b c"`},
		{Param{Name: "a b", Value: "c", HasValue: true}, `"a b=c"`},
		{Param{Name: "x y"}, `"x y"`},
		{Param{}, `""`},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.p, got, c.want)
		}
		if ps, _ := Parse(c.want); len(ps) != 1 || ps[0] != c.p {
			t.Errorf("Parse(%q) = %q, want %#v back", c.want, ps, c.p)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cmdline")
	if err := os.WriteFile(p, []byte(piCmdline), 0o644); err != nil {
		t.Fatal(err)
	}
	ps, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ps.Get("skyfleet.board"); v != "rpi3b" {
		t.Errorf("skyfleet.board = %q", v)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("a ", MaxSize/2)+"skyfleet.board=x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ps, err := ReadFile(big); err == nil || ps != nil {
		t.Errorf("an oversized file gave %d params, %v; want an error", len(ps), err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParse: the line is outside input (cmdline.txt on a FAT partition anyone
// with the card can edit). Parse must not panic; its output must be made of
// the input's bytes and bounded by it; names follow the '=' rule; and a line
// without quotes in its parameters renders back (Param.String) to the same
// parameters.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		piCmdline, raspiosCmdline,
		"console=tty1 console=serial0,115200 panic=10 oops=panic loglevel=4 skyfleet.board=rpi3b skyfleet.slot=b\n",
		`a="b c" "d=e f" g=h"i j" "k`, "x -- y z", "\xa0a=\xa0b", "==", `"`, `a="`, "a=1\x00b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		ps, rest := Parse(line)
		if len(ps) > len(line)/2+1 {
			t.Fatalf("%d params from %d bytes", len(ps), len(line))
		}
		cstr, _, _ := strings.Cut(line, "\x00")
		if !strings.HasSuffix(cstr, rest) {
			t.Fatalf("rest %q is not the end of the line", rest)
		}
		clean := true
		for _, p := range ps {
			for _, s := range []string{p.Name, p.Value} {
				if !strings.Contains(line, s) || strings.IndexByte(s, 0) >= 0 {
					t.Fatalf("%q: %q is not a NUL-free part of the line", line, s)
				}
				clean = clean && !strings.Contains(s, `"`)
			}
			if len(p.Name) > 1 && strings.IndexByte(p.Name[1:], '=') >= 0 {
				t.Fatalf("name %q holds an '=' after its first byte", p.Name)
			}
			if p.HasValue && p.Name == "" {
				t.Fatal("a value with an empty name")
			}
			if !p.HasValue && p.Value != "" {
				t.Fatal("a value without HasValue")
			}
			if !p.HasValue && p.Name == "--" {
				t.Fatal(`"--" returned as a parameter`)
			}
		}
		if !clean {
			return
		}
		var b strings.Builder
		for _, p := range ps {
			b.WriteString(p.String())
			b.WriteByte(' ')
		}
		again, rest2 := Parse(b.String())
		if !reflect.DeepEqual(again, ps) || rest2 != "" {
			t.Fatalf("%q -> %q -> %q -> %q", line, ps, b.String(), again)
		}
	})
}
