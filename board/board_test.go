package board

import (
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
