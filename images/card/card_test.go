package card

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/images"
	"github.com/skyfleet/skyfleet/images/imagetest"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/internal/gomod"
)

func modDirs(t *testing.T) (kernel, firmware string) {
	t.Helper()
	kernel, firmware, err := gomod.Payload()
	if err != nil {
		t.Fatal(err)
	}
	return kernel, firmware
}

// Every board's card is built for real and read back: its boot partition holds exactly
// the firmware, device trees and configuration that board needs, nothing of another
// generation's, and both partitions pass the real filesystem checkers.
func TestCardPerBoard(t *testing.T) {
	kdir, fwdir := modDirs(t)
	overlays, _ := filepath.Glob(filepath.Join(kdir, "overlays", "*"))
	if len(overlays) == 0 {
		t.Fatal("kernel module has no overlays")
	}
	allFirmware, _ := filepath.Glob(filepath.Join(fwdir, "*"))
	for _, name := range board.Names() {
		t.Run(name, func(t *testing.T) {
			p, _ := board.Get(name)
			initrd := bytes.Repeat([]byte("initrd "+name), 1000)
			fleet := []byte("[node]\nname = \"" + name + "\"\n")
			img := filepath.Join(t.TempDir(), name+".img")
			var last int64
			err := Build(img, Options{Board: p, KernelDir: kdir, FirmwareDir: fwdir, Initramfs: initrd, FleetTOML: fleet, Version: "test"},
				func(done, total int64) { last = done })
			if err != nil {
				t.Fatal(err)
			}
			if last == 0 {
				t.Error("no progress reported")
			}
			files, err := images.ListBoot(img)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			want = append(want, p.Firmware...)
			want = append(want, "config.txt", "fleet.toml", "a/vmlinuz", "a/initrd.gz", "a/cmdline.txt", "a/VERSION", "b/VERSION")
			for _, d := range p.DTBs {
				want = append(want, "a/"+d)
			}
			for _, o := range overlays {
				want = append(want, "a/overlays/"+filepath.Base(o))
			}
			slices.Sort(want)
			lower := make([]string, len(files))
			for i, f := range files {
				lower[i] = strings.ToLower(f)
			}
			for i := range want {
				want[i] = strings.ToLower(want[i])
			}
			if !slices.Equal(lower, want) {
				for _, f := range lower {
					if !slices.Contains(want, f) {
						t.Errorf("unexpected file on the boot partition: %s", f)
					}
				}
				for _, f := range want {
					if !slices.Contains(lower, f) {
						t.Errorf("missing from the boot partition: %s", f)
					}
				}
			}
			// No firmware of another generation: a Pi 4 card carries no start.elf, a Pi 5 none.
			for _, fw := range allFirmware {
				b := filepath.Base(fw)
				if (strings.HasSuffix(b, ".elf") || strings.HasSuffix(b, ".dat") || b == "bootcode.bin") && !slices.Contains(p.Firmware, b) && slices.Contains(lower, strings.ToLower(b)) {
					t.Errorf("card carries %s, which %s does not use", b, name)
				}
			}
			for path, src := range map[string]string{"a/vmlinuz": filepath.Join(kdir, "vmlinuz"), "a/" + p.DTBs[0]: filepath.Join(kdir, p.DTBs[0])} {
				got, err := images.ReadBootFile(img, path)
				if err != nil {
					t.Fatal(err)
				}
				wantb, _ := os.ReadFile(src)
				if !bytes.Equal(got, wantb) {
					t.Errorf("%s differs from %s", path, src)
				}
			}
			if got, _ := images.ReadBootFile(img, "a/initrd.gz"); !bytes.Equal(got, initrd) {
				t.Error("initrd.gz differs")
			}
			if got, _ := images.ReadBootFile(img, "fleet.toml"); !bytes.Equal(got, fleet) {
				t.Error("fleet.toml differs")
			}
			cfgTxt, _ := images.ReadBootFile(img, "config.txt")
			cfg, err := board.ParseConfigTXT(cfgTxt, "", false)
			if err != nil || cfg != (board.BootConfig{Kernel: "vmlinuz", Initramfs: "initrd.gz", OSPrefix: "a/"}) {
				t.Errorf("config.txt boots %+v (%v):\n%s", cfg, err, cfgTxt)
			}
			for _, l := range p.Config {
				if !strings.Contains(string(cfgTxt), l+"\n") {
					t.Errorf("config.txt lacks %q", l)
				}
			}
			cmdline, _ := images.ReadBootFile(img, "a/cmdline.txt")
			if !strings.Contains(string(cmdline), "skyfleet.board="+name) || !strings.Contains(string(cmdline), "skyfleet.slot=a") {
				t.Errorf("cmdline.txt: %s", cmdline)
			}
			parts, err := images.Partitions(img)
			if err != nil || len(parts) != 2 || parts[0].Start != 4<<20 || parts[1].Start+parts[1].Size > DefaultSize {
				t.Errorf("partitions %+v (%v)", parts, err)
			}
			imagetest.Fsck(t, img)
		})
	}
}

func TestMissingFirmwareIsNamed(t *testing.T) {
	kdir, _ := modDirs(t)
	p, _ := board.Get("rpi4b")
	_, err := BootFiles(Options{Board: p, KernelDir: kdir, FirmwareDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "start4.elf") {
		t.Fatalf("err = %v, want one naming start4.elf", err)
	}
}

// The template a card gets without --fleet must boot without config errors.
func TestTemplateParses(t *testing.T) {
	if _, problems := fleetconf.Parse([]byte(FleetTemplate), true); len(problems) != 0 {
		t.Fatalf("template has problems: %v", problems)
	}
}

// SlotFiles is the slot an update bundle carries: what a card puts in slot a,
// named relative to the slot, with the command line once per slot.
func TestSlotFiles(t *testing.T) {
	kdir, fwdir := modDirs(t)
	p, _ := board.Get("rpi3b")
	o := Options{Board: p, KernelDir: kdir, FirmwareDir: fwdir, Initramfs: []byte("initrd"), Version: "1.4.0"}
	boot, err := BootFiles(o)
	if err != nil {
		t.Fatal(err)
	}
	files, err := SlotFiles(o)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]images.File{}
	for i, f := range files {
		if i > 0 && files[i-1].Path >= f.Path {
			t.Errorf("not sorted: %s then %s", files[i-1].Path, f.Path)
		}
		got[f.Path] = f
	}
	for _, f := range boot {
		name, inSlot := strings.CutPrefix(f.Path, Slot+"/")
		if !inSlot || name == "cmdline.txt" {
			continue
		}
		if g, ok := got[name]; !ok || g.Size != f.Size {
			t.Errorf("slot file %s missing or of another size", name)
		}
		delete(got, name)
	}
	for _, slot := range board.Slots {
		f, ok := got["cmdline."+slot+".txt"]
		if !ok {
			t.Fatalf("no cmdline.%s.txt", slot)
		}
		rc, _ := f.Open()
		b := new(bytes.Buffer)
		b.ReadFrom(rc)
		rc.Close()
		if !strings.Contains(b.String(), "skyfleet.slot="+slot+" ") && !strings.HasSuffix(strings.TrimSpace(b.String()), "skyfleet.slot="+slot) {
			t.Errorf("cmdline.%s.txt: %q", slot, b.String())
		}
		delete(got, "cmdline."+slot+".txt")
	}
	if len(got) != 0 {
		t.Errorf("files not in the card's slot: %v", got)
	}
}
