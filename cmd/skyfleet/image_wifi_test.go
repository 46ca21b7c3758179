package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/images"
	"github.com/skyfleet/skyfleet/images/card"
	"github.com/skyfleet/skyfleet/initramfs"
	"github.com/skyfleet/skyfleet/internal/gomod"
	"github.com/skyfleet/skyfleet/wififw"
)

// rpiFirmwareDir lays out a --firmware directory as Raspberry Pi OS's /lib/firmware
// does for the files Debian's package lacks (the Pi 400's 43456, the Zero 2 W's
// 43436 and 43436s, under board-specific symlinks), plus the 43455's; every file's
// content is its own name, so a mix-up shows.
func rpiFirmwareDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := []string{
		"cypress/cyfmac43455-sdio.bin", "cypress/cyfmac43455-sdio.clm_blob",
		"cypress/cyfmac43430-sdio.bin", "cypress/cyfmac43430-sdio.clm_blob",
		"brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.txt",
		"brcm/brcmfmac43456-sdio.bin", "brcm/brcmfmac43456-sdio.clm_blob", "brcm/brcmfmac43456-sdio.txt",
		"brcm/brcmfmac43436-sdio.bin", "brcm/brcmfmac43436-sdio.clm_blob", "brcm/brcmfmac43436-sdio.txt",
		"brcm/brcmfmac43436s-sdio.bin", "brcm/brcmfmac43436s-sdio.txt",
		"regulatory.db", "regulatory.db.p7s",
	}
	links := map[string]string{
		"brcm/brcmfmac43455-sdio.bin":                                   "../cypress/cyfmac43455-sdio.bin",
		"brcm/brcmfmac43455-sdio.clm_blob":                              "../cypress/cyfmac43455-sdio.clm_blob",
		"brcm/brcmfmac43430-sdio.bin":                                   "../cypress/cyfmac43430-sdio.bin",
		"brcm/brcmfmac43430-sdio.clm_blob":                              "../cypress/cyfmac43430-sdio.clm_blob",
		"brcm/brcmfmac43456-sdio.raspberrypi,400.txt":                   "brcmfmac43456-sdio.txt",
		"brcm/brcmfmac43430-sdio.raspberrypi,model-zero-2-w.bin":        "brcmfmac43436s-sdio.bin",
		"brcm/brcmfmac43430-sdio.raspberrypi,model-zero-2-w.txt":        "brcmfmac43436s-sdio.txt",
		"brcm/brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.bin":      "brcmfmac43436-sdio.bin",
		"brcm/brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.txt":      "brcmfmac43436-sdio.txt",
		"brcm/brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.clm_blob": "brcmfmac43436-sdio.clm_blob",
	}
	for _, f := range files {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("content of "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Cards for every board from Debian's real firmware-brcm80211 (as `skyfleet image`
// fetches it: the newest version apt's lists hold, backports' after `make deps`), and
// the Pi 4/400 and Zero 2 W from a --firmware directory laid out as Raspberry Pi OS's,
// are built as the image command builds them and read back: the boot partition's
// initrd.gz holds at /lib/firmware exactly the files the kernel will ask for on that
// board, each non-empty and byte-equal to its source. From Debian, the models whose
// files no Debian package carries (the Pi 400's 43456 and the Zero 2 W's 43436, the
// chip's revision 2) are named in a warning and no other is. The size the firmware
// adds to the card (the growth of the compressed initramfs) is logged.
func TestCardCarriesWiFiFirmware(t *testing.T) {
	kdir, fwdir, err := gomod.Payload()
	if err != nil {
		t.Fatal(err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	rpiDir := rpiFirmwareDir(t)
	for _, tc := range []struct {
		name, board string
		src         wifiSource
		want        []string
		// noWiFi are the models the build must warn about, and only they.
		noWiFi []string
	}{
		{"rpi3b", "rpi3b", wifiSource{}, []string{
			"brcm/brcmfmac43430-sdio.bin", "brcm/brcmfmac43430-sdio.clm_blob", "brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt",
			"brcm/brcmfmac43455-sdio.bin", "brcm/brcmfmac43455-sdio.clm_blob", "brcm/brcmfmac43455-sdio.raspberrypi,3-model-b-plus.txt",
		}, nil},
		{"rpi4b-debian", "rpi4b", wifiSource{}, []string{
			"brcm/brcmfmac43455-sdio.bin", "brcm/brcmfmac43455-sdio.clm_blob", "brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.txt",
		}, []string{"Pi 400"}},
		{"zero2w-debian", "zero2w", wifiSource{}, []string{
			// The 43436s reports itself as the 3B's chip: the generic 43430 code and
			// CLM blob, and the NVRAM Debian links to the 3B's under the board's name.
			"brcm/brcmfmac43430-sdio.bin", "brcm/brcmfmac43430-sdio.clm_blob", "brcm/brcmfmac43430-sdio.raspberrypi,model-zero-2-w.txt",
		}, []string{"Zero 2 W (BCM43436)"}},
		{"rpi5-debian", "rpi5", wifiSource{}, []string{
			"brcm/brcmfmac43455-sdio.bin", "brcm/brcmfmac43455-sdio.clm_blob", "brcm/brcmfmac43455-sdio.raspberrypi,5-model-b.txt",
		}, nil},
		{"rpi4b-rpios", "rpi4b", wifiSource{Dir: rpiDir}, []string{
			"brcm/brcmfmac43455-sdio.bin", "brcm/brcmfmac43455-sdio.clm_blob", "brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.txt",
			"brcm/brcmfmac43456-sdio.bin", "brcm/brcmfmac43456-sdio.clm_blob", "brcm/brcmfmac43456-sdio.raspberrypi,400.txt",
		}, nil},
		{"zero2w-rpios", "zero2w", wifiSource{Dir: rpiDir}, []string{
			// The 43436s: its own code and NVRAM under the board's names, the 43430's CLM blob.
			"brcm/brcmfmac43430-sdio.raspberrypi,model-zero-2-w.bin", "brcm/brcmfmac43430-sdio.raspberrypi,model-zero-2-w.txt", "brcm/brcmfmac43430-sdio.clm_blob",
			"brcm/brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.bin", "brcm/brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.txt", "brcm/brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.clm_blob",
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := board.Get(tc.board)
			var log strings.Builder
			fw, err := wifiFirmware(p, tc.src, filepath.Join(cache, "skyfleet", "firmware"), func(s string) { log.WriteString(s + "\n") })
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("build output:\n%s", log.String())
			for _, r := range p.WiFi {
				warned := strings.Contains(log.String(), "for the "+r.Model+":")
				if want := slices.Contains(tc.noWiFi, r.Model); warned != want {
					t.Errorf("the build warns that the %s has no firmware: %v, want %v (an old firmware-brcm80211? `make deps` adds Debian's backports)", r.Model, warned, want)
				}
			}
			rel, err := initramfs.KernelRelease(kdir)
			if err != nil {
				t.Fatal(err)
			}
			spec := initramfs.Spec{Init: []byte("\x7fELF init"), KernelRelease: rel, ModulesDir: filepath.Join(kdir, "lib", "modules", rel), Modules: p.Modules}
			var bare bytes.Buffer
			if _, err := initramfs.Write(&bare, spec); err != nil {
				t.Fatal(err)
			}
			spec.Files = wififw.InitramfsFiles(fw)
			var rd bytes.Buffer
			if _, err := initramfs.Write(&rd, spec); err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(t.TempDir(), tc.board+".img")
			if err := card.Build(img, card.Options{Board: p, KernelDir: kdir, FirmwareDir: fwdir, Initramfs: rd.Bytes(), Version: "t"}, nil); err != nil {
				t.Fatal(err)
			}
			gz, err := images.ReadBootFile(img, "a/initrd.gz")
			if err != nil {
				t.Fatal(err)
			}
			got := readArchive(t, gz)
			var paths []string
			for name := range got {
				if rest, ok := strings.CutPrefix(name, "lib/firmware/"); ok {
					paths = append(paths, rest)
				}
			}
			slices.Sort(paths)
			// cfg80211's regulatory database goes on every card.
			want := slices.Sorted(slices.Values(append(tc.want, "regulatory.db", "regulatory.db.p7s")))
			if !slices.Equal(paths, want) {
				t.Errorf("the card's /lib/firmware holds\n  %s\nwant\n  %s", strings.Join(paths, "\n  "), strings.Join(want, "\n  "))
			}
			for _, f := range fw {
				src, err := os.ReadFile(f.Source)
				if err != nil {
					t.Fatal(err)
				}
				data := got["lib/firmware/"+f.Path]
				if len(data) == 0 || !bytes.Equal(data, src) {
					t.Errorf("%s on the card (%d bytes) differs from %s (%d bytes)", f.Path, len(data), f.Source, len(src))
				}
			}
			t.Logf("%s: %d firmware files, %d bytes raw; the card's initrd.gz grows by %d bytes (%d -> %d)",
				tc.board, len(fw), wififw.Bytes(fw), rd.Len()-bare.Len(), bare.Len(), rd.Len())
		})
	}
}

// Without a source for the Pi 400's firmware the rpi4b build stops and says what is
// missing and where it looked; --no-wifi-firmware builds without any and says so;
// the two flags together are refused.
func TestWiFiFirmwareMissingAndNone(t *testing.T) {
	p, _ := board.Get("rpi4b")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "brcm"), 0o755)
	_, err := wifiFirmware(p, wifiSource{Dir: dir}, t.TempDir(), func(string) {})
	var m *wififw.Missing
	if !errors.As(err, &m) || !strings.Contains(err.Error(), "--firmware "+dir) || !strings.Contains(err.Error(), "brcm/brcmfmac43456-sdio.raspberrypi,400.txt") {
		t.Errorf("err = %v", err)
	}
	var log strings.Builder
	fw, err := wifiFirmware(p, wifiSource{None: true}, t.TempDir(), func(s string) { log.WriteString(s) })
	if err != nil || len(fw) != 0 || !strings.Contains(log.String(), "WARNING") || !strings.Contains(log.String(), "NO Wi-Fi firmware") {
		t.Errorf("--no-wifi-firmware: %d files, %v, said %q", len(fw), err, log.String())
	}
	if _, err := wifiFirmware(p, wifiSource{None: true, Dir: dir}, t.TempDir(), func(string) {}); err == nil {
		t.Error("--firmware with --no-wifi-firmware accepted")
	}
}

// readArchive returns the regular files of a gzip(newc cpio) by name.
func readArchive(t *testing.T, gz []byte) map[string][]byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	err = cpio.ForEachRecord(cpio.Newc.Reader(bytes.NewReader(raw)), func(r cpio.Record) error {
		if r.Mode&cpio.S_IFMT == cpio.S_IFREG {
			b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			if err != nil {
				return err
			}
			files[r.Name] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
