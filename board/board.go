// Package board describes the Raspberry Pi models Skyfleet builds cards for: which
// firmware files the Pi's boot ROM and bootloader need on the FAT partition, which device
// trees the kernel needs, what config.txt and cmdline.txt must say, which console the
// kernel talks to, which kernel modules PID 1 loads and which Wi-Fi chips the board's
// models carry (and so which firmware files the kernel will ask for).
//
// A profile is data, not code: images/card turns it into files on the boot partition and
// initramfs/ into the boot archive. Nothing here touches the disk.
package board

import (
	"fmt"
	"sort"
	"strings"
)

// Profile is one board's boot recipe.
type Profile struct {
	// Name is the short name used on the command line (BOARD=rpi4b), e.g. "rpi3b".
	Name string
	// Model is the human name, e.g. "Raspberry Pi 3 Model B/B+".
	Model string
	// Firmware lists the files taken from github.com/gokrazy/firmware and placed at the
	// root of the boot partition. Empty for the Pi 5, whose bootloader lives in EEPROM
	// and needs no start*.elf.
	Firmware []string
	// DTBs lists the device trees from github.com/gokrazy/kernel.rpi copied into each
	// slot folder. The firmware picks the one matching the board it runs on.
	DTBs []string
	// Config holds board-specific config.txt lines, added after the common ones.
	Config []string
	// Console is the kernel console device as written in cmdline.txt. "serial0" is
	// rewritten by the Pi firmware (and by skyfleet qemu) to the UART wired to GPIO 14/15.
	Console string
	// Modules names the kernel modules (without .ko) PID 1 loads at boot, in order;
	// their dependencies come from modules.dep.
	Modules []string
	// WiFi lists the Wi-Fi radios the board's models carry, one per model and chip:
	// the card must hold the firmware of every one of them, since the same card boots
	// any model the profile covers. WiFiFirmware turns it into file names.
	WiFi []Radio
	// QEMU describes how to emulate the board, or is nil when QEMU cannot.
	QEMU *QEMU
}

// QEMU says how skyfleet qemu stands in for the Pi firmware on an emulated board.
type QEMU struct {
	// Machine is the -M value, e.g. "raspi3b".
	Machine string
	// Memory is the -m value, e.g. "1G" (the raspi machines accept only their real size).
	Memory string
	// DTB is the device tree passed with -dtb, one of Profile.DTBs.
	DTB string
	// Console is the device that "serial0" means under QEMU: the firmware's overlays are
	// not applied there, so the PL011 keeps the name the DTB's aliases give it.
	Console string
}

// wifiModules are the Broadcom FullMAC Wi-Fi drivers of every supported board's radio
// (BCM43430 on the 3B, BCM43436/43436s on the Zero 2 W, BCM43455 on the 3B+, 4B and 5,
// BCM43456 on the 400). Since Linux 6.7 brcmfmac hands firmware-vendor specifics to
// brcmfmac-wcc or brcmfmac-cyw and asks for it with request_module, which runs
// /sbin/modprobe: the initramfs has none, so PID 1 loads both vendor modules itself,
// after brcmfmac, whose symbols they use. Raspberry Pi's kernel has moved its chips
// between the two vendors, and each module only registers itself: loading both costs
// nothing and works either way.
var wifiModules = []string{"brcmutil", "brcmfmac", "brcmfmac_wcc", "brcmfmac_cyw"}

// Radio is one Wi-Fi chip on one Raspberry Pi model, named as brcmfmac names its
// firmware files for it.
type Radio struct {
	// Model is the Pi model, e.g. "Pi 3 Model B".
	Model string
	// Chip is the chip as brcmfmac identifies it, e.g. "BCM43430/1" (chip 43430,
	// revision 1), with the name on the package where that differs.
	Chip string
	// Compatible is the first compatible string of the model's device-tree root, e.g.
	// "raspberrypi,3-model-b": brcmfmac tries "<Firmware>.<Compatible>.<ext>" before
	// "<Firmware>.<ext>" for each file (drivers/.../brcmfmac/firmware.c, board_type).
	Compatible string
	// Firmware is the base name the driver derives from chip and revision
	// (brcmf_sdio_fwnames in sdio.c), under /lib/firmware/brcm/, e.g.
	// "brcmfmac43430-sdio".
	Firmware string
}

// FirmwareFile is one file brcmfmac loads for a radio, with the names it tries, under
// /lib/firmware, in the kernel's order.
type FirmwareFile struct {
	// Radio is the radio that needs the file.
	Radio Radio
	// Kind says what the file is: "firmware" (the chip's code, .bin), "NVRAM" (the
	// board's RF calibration, .txt) or "CLM blob" (regulatory data, .clm_blob).
	Kind string
	// Names are the paths the kernel asks for, relative to /lib/firmware, first the
	// board-specific one, e.g. "brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt",
	// then the generic one; the first that exists is used.
	Names []string
}

// wifiKinds are the files brcmfmac requests for an SDIO chip (brcmf_sdio_prepare_fw_request):
// the code, the NVRAM and the CLM blob. The driver calls the CLM blob optional, but
// without it the firmware knows no country's channels and power limits; a card carries it.
var wifiKinds = []struct{ kind, ext string }{{"firmware", ".bin"}, {"NVRAM", ".txt"}, {"CLM blob", ".clm_blob"}}

// WiFiFirmware returns every file the board's radios need, in WiFi order, each with
// the names the kernel tries. Two radios sharing a chip (the 3B+ and the 4B) each list
// the chip's files: the caller puts a path on the card once.
func (p Profile) WiFiFirmware() []FirmwareFile {
	var out []FirmwareFile
	for _, r := range p.WiFi {
		for _, k := range wifiKinds {
			out = append(out, FirmwareFile{Radio: r, Kind: k.kind, Names: []string{
				"brcm/" + r.Firmware + "." + r.Compatible + k.ext,
				"brcm/" + r.Firmware + k.ext,
			}})
		}
	}
	return out
}

var profiles = map[string]Profile{
	"rpi3b": {
		Name:     "rpi3b",
		Model:    "Raspberry Pi 3 Model B/B+",
		Firmware: []string{"bootcode.bin", "start.elf", "fixup.dat"},
		DTBs:     []string{"bcm2710-rpi-3-b.dtb", "bcm2710-rpi-3-b-plus.dtb"},
		// disable-bt gives the PL011 back to GPIO 14/15, so the console is a stable UART
		// that does not change speed with the core clock.
		Config:  []string{"dtoverlay=disable-bt"},
		Console: "serial0",
		Modules: wifiModules,
		WiFi: []Radio{
			{Model: "Pi 3 Model B", Chip: "BCM43430/1 (CYW43438)", Compatible: "raspberrypi,3-model-b", Firmware: "brcmfmac43430-sdio"},
			{Model: "Pi 3 Model B+", Chip: "BCM4345/6 (CYW43455)", Compatible: "raspberrypi,3-model-b-plus", Firmware: "brcmfmac43455-sdio"},
		},
		QEMU: &QEMU{Machine: "raspi3b", Memory: "1G", DTB: "bcm2710-rpi-3-b.dtb", Console: "ttyAMA1"},
	},
	"zero2w": {
		Name:     "zero2w",
		Model:    "Raspberry Pi Zero 2 W",
		Firmware: []string{"bootcode.bin", "start.elf", "fixup.dat"},
		DTBs:     []string{"bcm2710-rpi-zero-2-w.dtb", "bcm2710-rpi-zero-2.dtb"},
		Config:   []string{"dtoverlay=disable-bt"},
		Console:  "serial0",
		Modules:  wifiModules,
		// Zero 2 Ws carry one of two chips that both report as a BCM43430: the 43436s
		// as revision 1 (the 3B's names), the 43436 as revision 2 (B0). Raspberry Pi
		// ships each its own firmware under these board-specific names.
		WiFi: []Radio{
			{Model: "Zero 2 W (BCM43436s)", Chip: "BCM43430/1 (BCM43436s)", Compatible: "raspberrypi,model-zero-2-w", Firmware: "brcmfmac43430-sdio"},
			{Model: "Zero 2 W (BCM43436)", Chip: "BCM43430/2 (BCM43436)", Compatible: "raspberrypi,model-zero-2-w", Firmware: "brcmfmac43430b0-sdio"},
		},
	},
	"rpi4b": {
		Name:     "rpi4b",
		Model:    "Raspberry Pi 4 Model B / Pi 400",
		Firmware: []string{"start4.elf", "fixup4.dat"},
		DTBs:     []string{"bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb"},
		Config:   []string{"dtoverlay=disable-bt"},
		Console:  "serial0",
		Modules:  wifiModules,
		// The 400 has the 43456 (chip 4345 revision 9), not the 4B's 43455.
		WiFi: []Radio{
			{Model: "Pi 4 Model B", Chip: "BCM4345/6 (CYW43455)", Compatible: "raspberrypi,4-model-b", Firmware: "brcmfmac43455-sdio"},
			{Model: "Pi 400", Chip: "BCM4345/9 (CYW43456)", Compatible: "raspberrypi,400", Firmware: "brcmfmac43456-sdio"},
		},
	},
	"rpi5": {
		Name:  "rpi5",
		Model: "Raspberry Pi 5",
		// The Pi 5 boots from its EEPROM bootloader: no bootcode.bin, start*.elf or fixup.
		Firmware: nil,
		// C1 and D0 steppings need different trees; the bootloader picks by revision.
		DTBs:    []string{"bcm2712-rpi-5-b.dtb", "bcm2712d0-rpi-5-b.dtb"},
		Config:  []string{"dtparam=uart0_console"},
		Console: "serial0",
		Modules: wifiModules,
		// Both steppings' trees say "raspberrypi,5-model-b".
		WiFi: []Radio{
			{Model: "Pi 5", Chip: "BCM4345/6 (CYW43455)", Compatible: "raspberrypi,5-model-b", Firmware: "brcmfmac43455-sdio"},
		},
	},
}

// Default is the board `make run` builds: the one QEMU can boot.
const Default = "rpi3b"

// Get returns the profile called name, or an error listing the known boards.
func Get(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("unknown board %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return p, nil
}

// Names returns the known board names, sorted.
func Names() []string {
	var n []string
	for k := range profiles {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Slots are the A/B slot folders on the boot partition, selected by os_prefix.
var Slots = []string{"a", "b"}

// ConfigTXT renders config.txt for the board booting slot active, with slot tryboot
// (or "" for none) as the one-boot trial selected by the firmware's tryboot flag
// (Raspberry Pi config.txt §Conditional filters, [tryboot]). Every OS file the firmware
// loads (kernel, initramfs, cmdline.txt, DTBs, overlays) is looked up under os_prefix.
// The [tryboot] section is always there, naming active when no trial is set
// (tryboot ""), so that every later switch between slots changes one byte of the
// file in place and no FAT metadata (services/update/slot: a rename on FAT is not
// atomic, and a power cut in one left config.txt's cluster chain broken).
func (p Profile) ConfigTXT(active, tryboot string) string {
	if tryboot == "" {
		tryboot = active
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Skyfleet boot configuration for %s (%s).\n", p.Name, p.Model)
	b.WriteString("# Written by skyfleet image; the slot lines are rewritten by updates.\n")
	b.WriteString("[all]\n")
	b.WriteString("arm_64bit=1\n")
	b.WriteString("kernel=vmlinuz\n")
	b.WriteString("initramfs initrd.gz followkernel\n")
	b.WriteString("enable_uart=1\n")
	b.WriteString("disable_splash=1\n")
	for _, l := range p.Config {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "os_prefix=%s/\n", active)
	b.WriteString("\n[tryboot]\n")
	fmt.Fprintf(&b, "os_prefix=%s/\n", tryboot)
	return b.String()
}

// CmdlineTXT renders the kernel command line for a slot: consoles (the serial one last,
// so it becomes /dev/console for PID 1 and the operator's shell), panic=10 so a crashed
// kernel reboots (and falls back to the other slot under tryboot), and skyfleet.slot so
// the running system knows which slot it came from.
func (p Profile) CmdlineTXT(slot string) string {
	return fmt.Sprintf("console=tty1 console=%s,115200 panic=10 oops=panic loglevel=4 skyfleet.board=%s skyfleet.slot=%s\n",
		p.Console, p.Name, slot)
}
