// Package board describes the Raspberry Pi models Skyfleet builds cards for: which
// firmware files the Pi's boot ROM and bootloader need on the FAT partition, which device
// trees the kernel needs, what config.txt and cmdline.txt must say, which console the
// kernel talks to and which kernel modules PID 1 loads.
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
// (BCM43430 on the 3B and Zero 2 W, BCM43455 on the 3B+, 4B and 5).
var wifiModules = []string{"brcmutil", "brcmfmac"}

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
		QEMU:    &QEMU{Machine: "raspi3b", Memory: "1G", DTB: "bcm2710-rpi-3-b.dtb", Console: "ttyAMA1"},
	},
	"zero2w": {
		Name:     "zero2w",
		Model:    "Raspberry Pi Zero 2 W",
		Firmware: []string{"bootcode.bin", "start.elf", "fixup.dat"},
		DTBs:     []string{"bcm2710-rpi-zero-2-w.dtb", "bcm2710-rpi-zero-2.dtb"},
		Config:   []string{"dtoverlay=disable-bt"},
		Console:  "serial0",
		Modules:  wifiModules,
	},
	"rpi4b": {
		Name:     "rpi4b",
		Model:    "Raspberry Pi 4 Model B / Pi 400",
		Firmware: []string{"start4.elf", "fixup4.dat"},
		DTBs:     []string{"bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb"},
		Config:   []string{"dtoverlay=disable-bt"},
		Console:  "serial0",
		Modules:  wifiModules,
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
func (p Profile) ConfigTXT(active, tryboot string) string {
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
	if tryboot != "" {
		b.WriteString("\n[tryboot]\n")
		fmt.Fprintf(&b, "os_prefix=%s/\n", tryboot)
	}
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
