package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/dt"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/images/card"
	"github.com/skyfleet/skyfleet/internal/gomod"
)

func buildCard(t *testing.T, name string) string {
	t.Helper()
	kdir, fwdir, err := gomod.Payload()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := board.Get(name)
	img := filepath.Join(t.TempDir(), name+".img")
	if err := card.Build(img, card.Options{Board: p, KernelDir: kdir, FirmwareDir: fwdir, Initramfs: []byte("initrd"), Version: "t"}, nil); err != nil {
		t.Fatal(err)
	}
	return img
}

// The harness does what the firmware does: it boots the slot config.txt names, with
// that slot's files, on the PL011 console, and with the UART's bluetooth node gone.
func TestFirmwareArgs(t *testing.T) {
	img := buildCard(t, "rpi3b")
	dir := t.TempDir()
	args, err := firmwareArgs(img, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	arg := func(flag string) string {
		i := slices.Index(args, flag)
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("no %s in %v", flag, args)
		}
		return args[i+1]
	}
	if arg("-M") != "raspi3b" || arg("-m") != "1G" {
		t.Errorf("machine %v", args)
	}
	line := arg("-append")
	for _, want := range []string{"console=ttyAMA1,115200", "skyfleet.slot=a", "skyfleet.watchdog=off"} {
		if !strings.Contains(line, want) {
			t.Errorf("cmdline %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "serial0") {
		t.Errorf("serial0 not rewritten: %q", line)
	}
	if rd, _ := os.ReadFile(arg("-initrd")); string(rd) != "initrd" {
		t.Errorf("initrd %q", rd)
	}
	f, err := os.Open(arg("-dtb"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fdt, err := dt.ReadFDT(f)
	if err != nil {
		t.Fatal(err)
	}
	serials, usb := 0, 0
	fdt.RootNode.Walk(func(n *dt.Node) error {
		if strings.HasPrefix(n.Name, "usb@") {
			usb++
			val := func(name string) string {
				if p, ok := n.LookProperty(name); ok {
					return string(p.Value)
				}
				return ""
			}
			if c, m := val("compatible"), val("dr_mode"); c != "brcm,bcm2835-usb\x00" || m != "host\x00" {
				t.Errorf("%s not bound to dwc2 as a host: compatible %q, dr_mode %q", n.Name, c, m)
			}
		}
		if strings.HasPrefix(n.Name, "serial@") {
			serials++
			for _, c := range n.Children {
				if c.Name == "bluetooth" {
					t.Errorf("%s still has its bluetooth node", n.Name)
				}
			}
		}
		return nil
	})
	if serials == 0 || usb != 1 {
		t.Errorf("device tree has %d UARTs and %d USB hosts, want some and 1", serials, usb)
	}
	chosen, ok := fdt.RootNode.LookupChildByName("chosen")
	if !ok {
		t.Fatal("no /chosen")
	}
	if p, ok := chosen.LookProperty("rng-seed"); !ok || len(p.Value) != 64 || bytes.Equal(p.Value, make([]byte, 64)) {
		t.Errorf("no 64-byte random /chosen/rng-seed: %v", p)
	}
}

func TestFirmwareArgsRefuses(t *testing.T) {
	if _, err := firmwareArgs(buildCard(t, "rpi4b"), t.TempDir(), false); err == nil || !strings.Contains(err.Error(), "rpi3b") {
		t.Errorf("rpi4b image: err = %v, want advice to build rpi3b", err)
	}
	odd := filepath.Join(t.TempDir(), "odd.img")
	os.WriteFile(odd, bytes.Repeat([]byte{0}, 3000), 0o644)
	if _, err := firmwareArgs(odd, t.TempDir(), false); err == nil || !strings.Contains(err.Error(), "power of two") {
		t.Errorf("odd size: err = %v", err)
	}
}

// The bluetooth node is present in the downstream DTB to begin with; otherwise the
// test above proves nothing.
func TestDTBHasBluetoothBeforeStrip(t *testing.T) {
	kdir, _, err := gomod.Payload()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(kdir, "bcm2710-rpi-3-b.dtb"))
	if err != nil {
		t.Fatal(err)
	}
	fdt, err := dt.ReadFDT(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	fdt.RootNode.Walk(func(n *dt.Node) error {
		if n.Name == "bluetooth" {
			found = true
		}
		return nil
	})
	if !found {
		t.Fatal("no bluetooth node in the stock DTB")
	}
}

// The stall signatures of the bcm2835 SD host driver, taken from a CI boot that
// lost its card, are recognised; ordinary boot lines are not.
func TestSDStall(t *testing.T) {
	for line, want := range map[string]bool{
		"[    4.690220] sdhost-bcm2835 3f202000.mmc: PIO read timeout - EDM 00010801":         true,
		"[   13.798388] mmc1: Timeout waiting for hardware interrupt.":                        false,
		"[   14.822977] sdhost-bcm2835 3f202000.mmc: timeout waiting for hardware interrupt.": true,
		"[    1.234567] mmc0: new high speed SDHC card at address 4567":                       false,
		"[    4.189686] sdhost-bcm2835 3f202000.mmc: fsm 1, hsts 00000000":                    false,
		"skyfleet: ready in 4410 ms (kernel clock)":                                           false,
		"usb 1-1: device descriptor read/64, error -110 timeout":                              false,
	} {
		if got := sdStall(line); got != want {
			t.Errorf("sdStall(%q) = %v, want %v", line, got, want)
		}
	}
}

// runQEMU power-cycles on a stall: a stand-in for QEMU that prints a stall line
// to the console log and then hangs is killed, and the line is returned. One
// that prints no stall, or one only after the node said it is ready, is left
// alone. Lines before the starting offset (an earlier boot's) do not count.
func TestRunQEMUStall(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "serial.log")
	fake := filepath.Join(dir, "qemu")
	script := `#!/bin/sh
echo booting >> "$1"
[ "$2" = ready ] && echo 'skyfleet: ready in 4410 ms (kernel clock): address x' >> "$1"
[ "$2" != fine ] && echo '[ 4.69] sdhost-bcm2835 3f202000.mmc: PIO read timeout - EDM 00010801' >> "$1"
exec sleep 60
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath, []byte("[ 9.9] sdhost-bcm2835 3f202000.mmc: timeout waiting for hardware interrupt.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	line, err := runQEMU(ctx, fake, []string{logPath, "stall"}, logPath)
	if !strings.Contains(line, "PIO read timeout") || err != nil {
		t.Fatalf("stalled boot: line %q, err %v", line, err)
	}
	// A boot that writes nothing at all is hung too, once silentBoot has passed.
	defer func(d time.Duration) { silentBoot = d }(silentBoot)
	silentBoot = 300 * time.Millisecond
	silent := filepath.Join(dir, "silent")
	os.WriteFile(silent, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755)
	line, err = runQEMU(ctx, silent, nil, logPath)
	if !strings.Contains(line, "silent") || err != nil {
		t.Fatalf("silent boot: line %q, err %v", line, err)
	}
	silentBoot = time.Minute
	for _, run := range []string{"fine", "ready"} {
		quick, cancelQuick := context.WithTimeout(ctx, 2*time.Second)
		line, err = runQEMU(quick, fake, []string{logPath, run}, logPath)
		cancelQuick()
		if line != "" || err == nil {
			t.Fatalf("%s boot: line %q, err %v (want no stall, killed by the deadline)", run, line, err)
		}
	}
}

// --timeout takes plain seconds, as its usage line says, and Go durations.
func TestTimeoutFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"400":    400 * time.Second,
		"0":      0,
		"5m":     5 * time.Minute,
		"90s":    90 * time.Second,
		"1h30m":  90 * time.Minute,
		"2.5s":   2500 * time.Millisecond,
		"007":    7 * time.Second,
		"600000": 600000 * time.Second,
	} {
		var f timeoutFlag
		if err := f.Set(in); err != nil || time.Duration(f) != want {
			t.Errorf("--timeout %s = %v, %v; want %v", in, time.Duration(f), err, want)
		}
	}
	for _, in := range []string{"", "-5", "-5s", "5x", "five", "4294967296", "1e3"} {
		var f timeoutFlag
		err := f.Set(in)
		if err == nil || !strings.Contains(err.Error(), "neither seconds") {
			t.Errorf("--timeout %q: %v, want an error saying what it takes", in, err)
		}
	}
	// Through the command's flag parsing, which runs before QEMU is looked for.
	err := cmdQEMU([]string{"--timeout", "soon"})
	if err == nil || !strings.Contains(err.Error(), `invalid value "soon" for flag -timeout`) {
		t.Errorf("cmdQEMU --timeout soon: %v", err)
	}
}

// The harness follows a guest's restarts as the firmware would: the kernel's
// last line says whether it powered off or restarted, and with what command.
func TestGuestRestart(t *testing.T) {
	log := filepath.Join(t.TempDir(), "serial.log")
	for _, tc := range []struct {
		tail             string
		restart, tryboot bool
	}{
		{"[  12.3] reboot: Power down\r\n", false, false},
		{"[  12.3] reboot: Restarting system\r\n", true, false},
		{"[  12.3] reboot: Restarting system with command '0 tryboot'\r\n", true, true},
		{"skyfleet: ready\r\n", false, false}, // QEMU ended without the guest saying why
		// An earlier boot's restart before this boot's power-off counts as a power-off.
		{"reboot: Restarting system with command '0 tryboot'\r\n...\r\nreboot: Power down\r\n", false, false},
		// A panic resets the board after panic=10 seconds: a normal boot next.
		{"[    3.4] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n[    3.4] Rebooting in 10 seconds..\r\n", true, false},
		{"[    3.4] VFS: Unable to mount root fs\r\n[    3.4] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n[    3.4] Rebooting in 10 seconds..\r\n", true, false},
		// A panic that does not reboot (no panic=) hangs: QEMU ended otherwise.
		{"[    3.4] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n", false, false},
	} {
		old := "boot 1: reboot: Restarting system with command '0 tryboot'\r\n"
		os.WriteFile(log, []byte(old+tc.tail), 0o644)
		restart, try := guestRestart(log, int64(len(old)))
		if restart != tc.restart || try != tc.tryboot {
			t.Errorf("%q: restart %v tryboot %v, want %v %v", tc.tail, restart, try, tc.restart, tc.tryboot)
		}
	}
}

// --display takes WIDTHxHEIGHT within the firmware's range and puts the size
// on the kernel's command line as the firmware does; without it the command
// line is left alone.
func TestDisplayFlag(t *testing.T) {
	args := []string{"-M", "raspi3b", "-append", "console=ttyAMA0 skyfleet.board=rpi3b"}
	var d displayFlag
	if got := d.appendTo(args); !slices.Equal(got, args) {
		t.Errorf("no --display: %q", got)
	}
	if err := d.Set("480x320"); err != nil {
		t.Fatal(err)
	}
	got := d.appendTo(args)
	if want := "console=ttyAMA0 skyfleet.board=rpi3b bcm2708_fb.fbwidth=480 bcm2708_fb.fbheight=320"; got[3] != want {
		t.Errorf("-append %q, want %q", got[3], want)
	}
	if args[3] != "console=ttyAMA0 skyfleet.board=rpi3b" {
		t.Error("appendTo changed its argument")
	}
	for _, bad := range []string{"480", "480x", "x320", "480X320", "64x64", "4000x320", "-480x320", "480x320x2"} {
		if err := new(displayFlag).Set(bad); err == nil {
			t.Errorf("--display %q accepted", bad)
		}
	}
}
