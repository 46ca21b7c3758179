package board

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/internal/gomod"
)

// Every file a profile names must exist in the pinned kernel and firmware modules, or
// the card it builds cannot boot.
func TestProfilesNameRealFiles(t *testing.T) {
	kdir, fwdir, err := gomod.Payload()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Names() {
		p, err := Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.DTBs) == 0 {
			t.Errorf("%s: no device trees", name)
		}
		for _, f := range p.Firmware {
			if _, err := os.Stat(filepath.Join(fwdir, f)); err != nil {
				t.Errorf("%s: firmware %s: %v", name, f, err)
			}
		}
		for _, f := range p.DTBs {
			if _, err := os.Stat(filepath.Join(kdir, f)); err != nil {
				t.Errorf("%s: dtb %s: %v", name, f, err)
			}
		}
		if p.QEMU != nil && !contains(p.DTBs, p.QEMU.DTB) {
			t.Errorf("%s: QEMU boots %s, which the card does not carry", name, p.QEMU.DTB)
		}
	}
}

// The Pi generations boot differently: the 3 and Zero 2 W need bootcode.bin, the 4 the
// start4 firmware, the 5 none at all.
func TestFirmwarePerGeneration(t *testing.T) {
	want := map[string]string{"rpi3b": "bootcode.bin start.elf fixup.dat", "zero2w": "bootcode.bin start.elf fixup.dat", "rpi4b": "start4.elf fixup4.dat", "rpi5": ""}
	for name, fw := range want {
		p, _ := Get(name)
		if got := strings.Join(p.Firmware, " "); got != fw {
			t.Errorf("%s firmware = %q, want %q", name, got, fw)
		}
	}
	if _, err := Get("rpi2"); err == nil || !strings.Contains(err.Error(), "rpi3b") {
		t.Errorf("unknown board error should list the known ones, got %v", err)
	}
}

// config.txt as rendered must read back, through the firmware's rules, as the slot's
// kernel and boot archive; [tryboot] switches the slot only on a tryboot.
func TestConfigTXTRoundTrip(t *testing.T) {
	p, _ := Get("rpi4b")
	txt := p.ConfigTXT("a", "b")
	normal, err := ParseConfigTXT([]byte(txt), "pi4", false)
	if err != nil {
		t.Fatal(err)
	}
	if normal != (BootConfig{Kernel: "vmlinuz", Initramfs: "initrd.gz", OSPrefix: "a/"}) {
		t.Errorf("normal boot: %+v", normal)
	}
	try, _ := ParseConfigTXT([]byte(txt), "pi4", true)
	if try.OSPrefix != "b/" {
		t.Errorf("tryboot os_prefix = %q, want b/", try.OSPrefix)
	}
	if !strings.Contains(txt, "arm_64bit=1") || !strings.Contains(txt, "dtoverlay=disable-bt") {
		t.Errorf("config.txt lacks 64-bit mode or the UART overlay:\n%s", txt)
	}
}

func TestParseConfigTXTFilters(t *testing.T) {
	src := "kernel=k1\n[pi4]\nkernel=k4 # comment\n[pi3]\nkernel=k3\n[none]\nos_prefix=x/\n[all]\ninitramfs   rd  followkernel\n"
	c, err := ParseConfigTXT([]byte(src), "pi3", false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kernel != "k3" || c.Initramfs != "rd" || c.OSPrefix != "" {
		t.Errorf("got %+v", c)
	}
	if _, err := ParseConfigTXT([]byte("[pi4\n"), "pi3", false); err == nil {
		t.Error("unterminated section accepted")
	}
	c, _ = ParseConfigTXT(nil, "pi3", false)
	if c.Kernel != "kernel8.img" {
		t.Errorf("default kernel %q", c.Kernel)
	}
}

func TestCmdlineNamesSlotAndSerialLast(t *testing.T) {
	p, _ := Get("rpi3b")
	f := strings.Fields(p.CmdlineTXT("b"))
	if !contains(f, "skyfleet.slot=b") || !contains(f, "skyfleet.board=rpi3b") || !contains(f, "panic=10") {
		t.Errorf("cmdline %v", f)
	}
	last := ""
	for _, w := range f {
		if strings.HasPrefix(w, "console=") {
			last = w
		}
	}
	if last != "console=serial0,115200" {
		t.Errorf("last console %q: the serial console must be /dev/console", last)
	}
}

func FuzzParseConfigTXT(f *testing.F) {
	p, _ := Get("rpi3b")
	f.Add([]byte(p.ConfigTXT("a", "b")), true)
	f.Add([]byte("[pi3]\nkernel=x\n[tryboot]\ninitramfs\n"), false)
	f.Add([]byte("[\n=\n#\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, tryboot bool) {
		c, err := ParseConfigTXT(data, "pi3", tryboot)
		if err == nil && c.Kernel == "" && !strings.Contains(string(data), "kernel") {
			t.Errorf("lost the default kernel: %+v", c)
		}
	})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Every radio's names are the ones the pinned kernel asks for: its Firmware is a base
// name compiled into brcmfmac.ko, and its Compatible is the root compatible of one of
// the board's device trees (the driver's board_type). Every device tree's model has a
// radio, so no model of a board goes without Wi-Fi firmware.
func TestWiFiRadiosMatchKernelAndDTBs(t *testing.T) {
	kdir, _, err := gomod.Payload()
	if err != nil {
		t.Fatal(err)
	}
	kos, _ := filepath.Glob(filepath.Join(kdir, "lib/modules/*/kernel/drivers/net/wireless/broadcom/brcm80211/brcmfmac/brcmfmac.ko"))
	if len(kos) != 1 {
		t.Fatalf("brcmfmac.ko: found %v", kos)
	}
	ko, err := os.ReadFile(kos[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Names() {
		p, _ := Get(name)
		if len(p.WiFi) == 0 {
			t.Errorf("%s: no Wi-Fi radios", name)
		}
		compat := map[string]bool{}
		for _, d := range p.DTBs {
			data, err := os.ReadFile(filepath.Join(kdir, d))
			if err != nil {
				t.Fatal(err)
			}
			c, err := rootCompatible(data)
			if err != nil {
				t.Fatalf("%s: %v", d, err)
			}
			compat[c] = true
		}
		covered := map[string]bool{}
		for _, r := range p.WiFi {
			if !bytes.Contains(ko, []byte("brcm/"+r.Firmware+"\x00")) {
				t.Errorf("%s %s: brcmfmac.ko never asks for brcm/%s", name, r.Model, r.Firmware)
			}
			if !compat[r.Compatible] {
				t.Errorf("%s %s: compatible %q is none of the board's device trees' %v", name, r.Model, r.Compatible, compat)
			}
			covered[r.Compatible] = true
		}
		for c := range compat {
			if !covered[c] {
				t.Errorf("%s: the device tree for %q has no radio", name, c)
			}
		}
	}
}

// The names, in the kernel's order, for one radio: board-specific first, then generic,
// for the code, the NVRAM and the CLM blob.
func TestWiFiFirmwareNames(t *testing.T) {
	p, _ := Get("rpi4b")
	var got []string
	for _, f := range p.WiFiFirmware() {
		if f.Radio.Model == "Pi 4 Model B" {
			got = append(got, f.Kind+": "+strings.Join(f.Names, " "))
		}
	}
	want := []string{
		"firmware: brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.bin brcm/brcmfmac43455-sdio.bin",
		"NVRAM: brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.txt brcm/brcmfmac43455-sdio.txt",
		"CLM blob: brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.clm_blob brcm/brcmfmac43455-sdio.clm_blob",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The vendor modules come after brcmfmac: they link against it.
	if strings.Join(p.Modules, " ") != "brcmutil brcmfmac brcmfmac_wcc brcmfmac_cyw" {
		t.Errorf("modules %v", p.Modules)
	}
}

// rootCompatible returns the first string of the root node's compatible property in
// a flattened device tree (the devicetree specification's FDT format).
func rootCompatible(d []byte) (string, error) {
	be := binary.BigEndian
	if len(d) < 40 || be.Uint32(d) != 0xd00dfeed {
		return "", fmt.Errorf("not a flattened device tree")
	}
	structOff, stringsOff := be.Uint32(d[8:]), be.Uint32(d[12:])
	i, depth := int(structOff), 0
	for i+4 <= len(d) {
		tok := be.Uint32(d[i:])
		i += 4
		switch tok {
		case 1: // FDT_BEGIN_NODE: name, NUL, padded to 4
			depth++
			if depth > 1 {
				return "", fmt.Errorf("root has no compatible")
			}
			n := bytes.IndexByte(d[i:], 0)
			i = (i + n + 1 + 3) &^ 3
		case 3: // FDT_PROP: len, nameoff, value padded to 4
			l, nameOff := int(be.Uint32(d[i:])), int(be.Uint32(d[i+4:]))
			i += 8
			name := d[int(stringsOff)+nameOff:]
			name = name[:bytes.IndexByte(name, 0)]
			if string(name) == "compatible" {
				v := d[i : i+l]
				return string(v[:bytes.IndexByte(v, 0)]), nil
			}
			i = (i + l + 3) &^ 3
		case 4: // FDT_NOP
		default:
			return "", fmt.Errorf("token %d before the root's compatible", tok)
		}
	}
	return "", fmt.Errorf("truncated")
}
