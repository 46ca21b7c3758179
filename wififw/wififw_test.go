package wififw

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/skyfleet/skyfleet/board"
)

// fakeDir lays out files (path -> content; content "->target" makes a symlink) under a
// new directory, as /lib/firmware is laid out.
func fakeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// debianLike is the layout of Debian's firmware-brcm80211 for the Pi 3 boards: the
// chip files are symlinks into cypress/, the 3B+ NVRAM a plain file, and a few
// files for other boards that must not be taken.
func debianLike() map[string]string {
	return map[string]string{
		"cypress/cyfmac43430-sdio.bin":                           "43430 code",
		"cypress/cyfmac43430-sdio.clm_blob":                      "43430 clm",
		"cypress/cyfmac43455-sdio.bin":                           "43455 code",
		"cypress/cyfmac43455-sdio.clm_blob":                      "43455 clm",
		"brcm/brcmfmac43430-sdio.bin":                            "->../cypress/cyfmac43430-sdio.bin",
		"brcm/brcmfmac43430-sdio.clm_blob":                       "->../cypress/cyfmac43430-sdio.clm_blob",
		"brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt":      "3B nvram",
		"brcm/brcmfmac43430-sdio.AP6212.txt":                     "not a Pi",
		"brcm/brcmfmac43455-sdio.bin":                            "->../cypress/cyfmac43455-sdio.bin",
		"brcm/brcmfmac43455-sdio.clm_blob":                       "->../cypress/cyfmac43455-sdio.clm_blob",
		"brcm/brcmfmac43455-sdio.raspberrypi,3-model-b-plus.txt": "3B+ nvram",
		"brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.txt":      "4B nvram",
	}
}

// The Pi 3 boards get the six files the kernel asks for, each read through its
// symlink, under the requested name, and nothing else.
func TestSelectTakesWhatTheKernelAsksFor(t *testing.T) {
	dir := fakeDir(t, debianLike())
	p, _ := board.Get("rpi3b")
	files, err := Select(p, dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		got[f.Path] = string(f.Data)
	}
	want := map[string]string{
		"brcm/brcmfmac43430-sdio.bin":                            "43430 code",
		"brcm/brcmfmac43430-sdio.clm_blob":                       "43430 clm",
		"brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt":      "3B nvram",
		"brcm/brcmfmac43455-sdio.bin":                            "43455 code",
		"brcm/brcmfmac43455-sdio.clm_blob":                       "43455 clm",
		"brcm/brcmfmac43455-sdio.raspberrypi,3-model-b-plus.txt": "3B+ nvram",
	}
	if len(got) != len(want) {
		t.Errorf("got %d files, want %d: %v", len(got), len(want), got)
	}
	for p, c := range want {
		if got[p] != c {
			t.Errorf("%s = %q, want %q", p, got[p], c)
		}
	}
	if Bytes(files) != int64(len("43430 code43430 clm3B nvram43455 code43455 clm3B+ nvram")) {
		t.Errorf("Bytes = %d", Bytes(files))
	}
	m := InitramfsFiles(files)
	if string(m["/lib/firmware/brcm/brcmfmac43455-sdio.bin"]) != "43455 code" {
		t.Errorf("initramfs paths: %v", m)
	}
}

// The kernel tries the board-specific name first; so does Select, and a generic NVRAM
// serves when there is no board-specific one. A chip two models share (the 4B and the
// 5 both have a 43455) is one file, listed for both.
func TestSelectPrefersBoardSpecificAndSharesChips(t *testing.T) {
	files := debianLike()
	files["brcm/brcmfmac43455-sdio.raspberrypi,3-model-b-plus.bin"] = "3B+ special code"
	files["brcm/brcmfmac43430-sdio.txt"] = "generic nvram"
	delete(files, "brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt")
	dir := fakeDir(t, files)
	p, _ := board.Get("rpi3b")
	got, err := Select(p, dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, f := range got {
		paths[f.Path] = string(f.Data)
	}
	if paths["brcm/brcmfmac43455-sdio.raspberrypi,3-model-b-plus.bin"] != "3B+ special code" {
		t.Errorf("board-specific code not taken: %v", paths)
	}
	if _, ok := paths["brcm/brcmfmac43455-sdio.bin"]; ok {
		t.Errorf("the generic 43455 code was taken too: the kernel never reads it on this board")
	}
	if paths["brcm/brcmfmac43430-sdio.txt"] != "generic nvram" {
		t.Errorf("generic NVRAM not taken: %v", paths)
	}

	shared := board.Profile{Name: "two", WiFi: []board.Radio{
		{Model: "A", Chip: "c", Compatible: "raspberrypi,3-model-b-plus", Firmware: "brcmfmac43455-sdio"},
		{Model: "B", Chip: "c", Compatible: "raspberrypi,4-model-b", Firmware: "brcmfmac43455-sdio"},
	}}
	got, err = Select(shared, fakeDir(t, debianLike()), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 { // code and CLM shared, two NVRAMs
		t.Errorf("got %d files, want 4", len(got))
	}
	for _, f := range got {
		if f.Path == "brcm/brcmfmac43455-sdio.bin" && !slices.Equal(f.For, []string{"A", "B"}) {
			t.Errorf("shared code is for %v, want A and B", f.For)
		}
	}
}

// A missing file is an error naming the board, the source, each missing file's
// model and every name the kernel would try; all are listed at once.
func TestSelectNamesEveryMissingFile(t *testing.T) {
	dir := fakeDir(t, debianLike())
	p, _ := board.Get("rpi4b")
	_, err := Select(p, dir, "Debian's firmware-brcm80211 9.9")
	var m *Missing
	if !errors.As(err, &m) {
		t.Fatalf("err = %v, want *Missing", err)
	}
	if len(m.Files) != 3 {
		t.Errorf("%d missing, want the 400's code, NVRAM and CLM blob: %v", len(m.Files), m.Files)
	}
	msg := err.Error()
	for _, w := range []string{"rpi4b", "Debian's firmware-brcm80211 9.9", "Pi 400",
		"brcm/brcmfmac43456-sdio.raspberrypi,400.txt", "brcm/brcmfmac43456-sdio.txt", "brcm/brcmfmac43456-sdio.bin",
		"brcm/brcmfmac43456-sdio.clm_blob", "--firmware DIR", "--no-wifi-firmware"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
}

// Newer packages compress their files; the kernel here cannot read them so, and
// Select decompresses. A symlink out of the source and an empty file are refused.
func TestSelectDecompressesAndRefusesEscapes(t *testing.T) {
	files := debianLike()
	delete(files, "brcm/brcmfmac43455-sdio.raspberrypi,3-model-b-plus.txt")
	delete(files, "brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt")
	dir := fakeDir(t, files)
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write([]byte("3B+ nvram from zstd"))
	zw.Close()
	var xb bytes.Buffer
	xw, _ := xz.NewWriter(&xb)
	xw.Write([]byte("3B nvram from xz"))
	xw.Close()
	os.WriteFile(filepath.Join(dir, "brcm/brcmfmac43455-sdio.raspberrypi,3-model-b-plus.txt.zst"), zb.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt.xz"), xb.Bytes(), 0o644)
	p, _ := board.Get("rpi3b")
	got, err := Select(p, dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got {
		switch f.Path {
		case "brcm/brcmfmac43455-sdio.raspberrypi,3-model-b-plus.txt":
			if string(f.Data) != "3B+ nvram from zstd" || !strings.HasSuffix(f.Source, ".zst") {
				t.Errorf("zstd: %q from %s", f.Data, f.Source)
			}
		case "brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt":
			if string(f.Data) != "3B nvram from xz" {
				t.Errorf("xz: %q", f.Data)
			}
		}
	}

	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("not firmware"), 0o644)
	files = debianLike()
	files["brcm/brcmfmac43430-sdio.bin"] = "->" + outside
	if _, err := Select(p, fakeDir(t, files), "test"); err == nil || errors.As(err, new(*Missing)) {
		t.Errorf("a symlink out of the source: err = %v, want a refusal", err)
	}
	files = debianLike()
	files["brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt"] = ""
	if _, err := Select(p, fakeDir(t, files), "test"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty NVRAM: err = %v", err)
	}
	files = debianLike()
	corrupt := fakeDir(t, files)
	os.Remove(filepath.Join(corrupt, "brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt"))
	os.WriteFile(filepath.Join(corrupt, "brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt.zst"), []byte("not zstd"), 0o644)
	if _, err := Select(p, corrupt, "test"); err == nil || !strings.Contains(err.Error(), "decompress") {
		t.Errorf("a corrupt .zst: err = %v", err)
	}
}

// Debian's wireless-regdb holds the database twice (-debian, -upstream) for
// update-alternatives; the kernel checks it with the upstream key, so the -upstream
// pair is placed under the names cfg80211 loads. A plain name wins; none is an error.
func TestRegdbTakesTheUpstreamSignedPair(t *testing.T) {
	dir := fakeDir(t, map[string]string{
		"regulatory.db-debian": "db debian", "regulatory.db-upstream": "db upstream",
		"regulatory.db.p7s-debian": "sig debian", "regulatory.db.p7s-upstream": "sig upstream",
	})
	files, err := Regdb(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "regulatory.db" || string(files[0].Data) != "db upstream" ||
		files[1].Path != "regulatory.db.p7s" || string(files[1].Data) != "sig upstream" {
		t.Errorf("got %+v", files)
	}
	if _, err := Regdb(fakeDir(t, map[string]string{"regulatory.db": "db"}), "here"); err == nil || !strings.Contains(err.Error(), "regulatory.db.p7s") || !strings.Contains(err.Error(), "here") {
		t.Errorf("missing signature: err = %v", err)
	}
}
