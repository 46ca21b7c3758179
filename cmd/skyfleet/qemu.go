package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/u-root/u-root/pkg/dt"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/images"
)

func cmdQEMU(args []string) error {
	fs := newFlags("qemu", "qemu --image OUT.img [--status-port P] [--serial FILE] [--timeout SECONDS|DURATION]",
		"skyfleet qemu --image skyfleet.img --status-port 8080   # then: curl 127.0.0.1:8080/status")
	img := fs.String("image", "skyfleet.img", "SD-card image built by 'skyfleet image' for a board QEMU can emulate (rpi3b); QEMU writes to it like a real card")
	port := fs.Int("status-port", 8080, "host port on 127.0.0.1 forwarded to the node's status API (guest port 80)")
	meshPort := fs.Int("mesh-port", 0, "host UDP port on 127.0.0.1 forwarded to the node's mesh port 5505 (0: none)")
	serial := fs.String("serial", "", "also write the serial console to this file")
	var timeout timeoutFlag
	fs.Var(&timeout, "timeout", "`time` after which QEMU is stopped with exit status 3: seconds (400) or a Go duration (5m, 1h30m); 0: run until the guest powers off")
	touch := fs.Bool("touch", false, "attach a USB tablet, the emulated touchscreen: the guest sees an evdev device, and QMP input-send-event drives it")
	qmp := fs.String("qmp", "", "serve QEMU's QMP on this Unix socket path (screendump of the framebuffer, input-send-event for touches)")
	var display displayFlag
	fs.Var(&display, "display", "`WxH`: the framebuffer's size in pixels, e.g. 480x320 for a 3.5\" panel, as the Pi firmware sets it from config.txt's framebuffer_width and framebuffer_height (default: the kernel's, 800x480)")
	tryboot := fs.Bool("tryboot", false, "make the first boot one after 'reboot 0 tryboot': [tryboot] sections apply. A guest that restarts is booted again either way, with tryboot when it asked for it, as the Pi firmware does")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bin, err := exec.LookPath("qemu-system-aarch64")
	if err != nil {
		return fmt.Errorf("qemu-system-aarch64 not found: install it with 'apt-get install qemu-system-arm' (Debian) and try again")
	}
	dir, err := os.MkdirTemp("", "skyfleet-qemu-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fwd := fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:80", *port)
	if *meshPort != 0 {
		fwd += fmt.Sprintf(",hostfwd=udp:127.0.0.1:%d-:5505", *meshPort)
	}
	con := "stdio,id=con,signal=off"
	if isTerminal(os.Stdin) {
		// Multiplex the monitor so Ctrl-A X quits, as with -nographic.
		con += ",mux=on"
		fmt.Fprintln(os.Stderr, "skyfleet qemu: serial console below; Ctrl-A X quits QEMU, 'poweroff' stops the node")
	}
	// The console always goes to a log as well, which watchSD reads; a power
	// cycle appends to it.
	logPath := *serial
	if logPath == "" {
		logPath = filepath.Join(dir, "serial.log")
	}
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		return err
	}
	con += ",logfile=" + logPath + ",logappend=on"
	qargs := []string{
		// One host thread runs all four emulated cores. With a thread per
		// core (QEMU's default, MTTCG) every TLB flush the guest broadcasts
		// stops all four threads: the kernel's ftrace init patches 69,404
		// call sites one flush each, which took 57 s of a 64 s boot on a
		// 2-core host before /init ran; with one thread it takes 2 s. The
		// guest then has one host core, so the USB host must not eat it
		// (firmwareDTB).
		"-accel", "tcg,thread=single",
		"-drive", "if=sd,format=raw,file=" + *img,
		"-usb", "-device", "usb-net,netdev=net0",
		"-netdev", "user,id=net0," + fwd,
		"-display", "none", "-no-reboot",
		"-chardev", con, "-serial", "chardev:con"}
	if isTerminal(os.Stdin) {
		qargs = append(qargs, "-mon", "chardev=con")
	} else {
		qargs = append(qargs, "-monitor", "none")
	}
	if *touch {
		qargs = append(qargs, "-device", "usb-tablet")
	}
	if *qmp != "" {
		qargs = append(qargs, "-qmp", "unix:"+*qmp+",server=on,wait=off")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout))
		defer cancel()
	}
	// Each start reads config.txt and the slot it names afresh, as the firmware
	// does: an update rewrites both between boots.
	trial := *tryboot
	for attempt, boots := 1, 1; ; attempt++ {
		fw, err := firmwareArgs(*img, dir, trial)
		if err != nil {
			return err
		}
		fw = display.appendTo(fw)
		from := fileSize(logPath)
		stalled, err := runQEMU(ctx, bin, append(fw, qargs...), logPath)
		if ctx.Err() == context.DeadlineExceeded {
			fmt.Fprintf(os.Stderr, "skyfleet qemu: timeout after %s, QEMU stopped\n", time.Duration(timeout))
			return exitError(3)
		}
		if ctx.Err() != nil {
			return nil // interrupted by the operator
		}
		if stalled != "" {
			if attempt == sdAttempts {
				return fmt.Errorf("the emulated Pi hung on %d boots in a row (%s); the host may be too loaded to emulate a Pi", attempt, stalled)
			}
			msg := fmt.Sprintf("skyfleet qemu: %s: power-cycling the VM (boot %d of %d)", stalled, attempt+1, sdAttempts)
			fmt.Fprintln(os.Stderr, msg)
			if f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0); err == nil {
				fmt.Fprintf(f, "\r\n%s\r\n", msg)
				f.Close()
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("qemu: %w", err)
		}
		// QEMU runs with -no-reboot, so a guest that restarts ends it: start
		// it again, in the [tryboot] slot if the guest asked the firmware for
		// it (the kernel logs the restart command), as the Pi's firmware would.
		restart, try := guestRestart(logPath, from)
		if !restart {
			return nil // powered off
		}
		if boots++; boots > maxBoots {
			return fmt.Errorf("the guest restarted %d times; stopping (a reboot loop?)", maxBoots)
		}
		trial, attempt = try, 0
		msg := "skyfleet qemu: the guest restarted; booting again"
		if trial {
			msg += " with tryboot ([tryboot] applies once)"
		}
		fmt.Fprintln(os.Stderr, msg)
		if f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0); err == nil {
			fmt.Fprintf(f, "\r\n%s\r\n", msg)
			f.Close()
		}
	}
}

// maxBoots bounds the guest restarts one skyfleet qemu follows.
const maxBoots = 50

// guestRestart reads the serial log from offset from (one boot's output) and
// reports whether the guest restarted rather than powered off, and whether it
// asked for tryboot: the kernel's last words are "reboot: Restarting system"
// (with "with command '0 tryboot'" for RESTART2 and that argument) or
// "reboot: Power down". A kernel panic ("Kernel panic - not syncing", then
// "Rebooting in N seconds" from the command line's panic=N) resets the board
// without a reboot command: the firmware has no tryboot request then, so the
// next boot is a normal one, in the default slot.
func guestRestart(logPath string, from int64) (restart, tryboot bool) {
	f, err := os.Open(logPath)
	if err != nil {
		return false, false
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return false, false
	}
	b, _ := io.ReadAll(io.LimitReader(f, 64<<20))
	i := bytes.LastIndex(b, []byte("reboot: Restarting system"))
	off := bytes.LastIndex(b, []byte("reboot: Power down"))
	if p := bytes.LastIndex(b, []byte("Kernel panic - not syncing")); p > i && p > off &&
		bytes.Contains(b[p:], []byte("Rebooting in ")) {
		return true, false
	}
	if i < 0 || off > i {
		return false, false
	}
	line := b[i:]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	return true, bytes.Contains(line, []byte("with command '0 tryboot'"))
}

func fileSize(path string) int64 {
	if fi, err := os.Stat(path); err == nil {
		return fi.Size()
	}
	return 0
}

// sdAttempts is how many boots skyfleet qemu tries when the emulated Pi hangs
// while booting (watchBoot).
const sdAttempts = 3

// silentBoot is how long a boot may go without writing one byte to the console
// before it counts as hung. The kernel's first line comes seconds after QEMU
// starts; on a loaded 2-core host QEMU's Pi 3 now and then spins before that
// with no output at all (about 1 boot in 9 at load 10-18: QEMU at 150% CPU for
// 8 minutes, the serial log empty).
var silentBoot = 2 * time.Minute

// runQEMU runs QEMU once until it exits or ctx ends. If the boot hangs (see
// watchBoot), it kills QEMU and returns why.
func runQEMU(ctx context.Context, bin string, qargs []string, logPath string) (stalled string, err error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(runCtx, bin, qargs...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// SIGTERM first: QEMU then puts a terminal it had in raw mode back, which
	// SIGKILL (the default, and the fallback after WaitDelay) would not.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	// The emulator does not outlive skyfleet qemu, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	start, _ := os.Stat(logPath)
	var from int64
	if start != nil {
		from = start.Size()
	}
	found := make(chan string, 1)
	silent := silentBoot
	go func() {
		if line := watchBoot(runCtx, logPath, from, silent); line != "" {
			found <- line
			cancel()
		}
	}()
	err = cmd.Run()
	cancel()
	select {
	case line := <-found:
		return line, nil
	default:
		return "", err
	}
}

// watchBoot follows the serial log from offset from until ctx ends or the node
// says it is ready, and says why the boot hung before that ("" if it did not):
// the emulated SD card stalled (the console line, see sdStall), or the console
// stayed silent for silentBoot. A hang after ready is left alone: a power
// cycle then would pull a running node from under whoever uses it.
func watchBoot(ctx context.Context, logPath string, from int64, silentBoot time.Duration) string {
	var pending []byte
	start, quiet := time.Now(), true
	buf := make([]byte, 64<<10)
	for {
		f, err := os.Open(logPath)
		if err == nil {
			for {
				n, _ := f.ReadAt(buf, from)
				if n == 0 {
					break
				}
				from += int64(n)
				quiet = false
				pending = append(pending, buf[:n]...)
				for {
					i := bytes.IndexByte(pending, '\n')
					if i < 0 {
						break
					}
					line := string(bytes.TrimSpace(pending[:i]))
					if sdStall(line) {
						f.Close()
						return fmt.Sprintf("the emulated SD card stalled (%q): QEMU's BCM2835 SD host model loses a transfer when the host is too busy, and the guest's driver never recovers", line)
					}
					if strings.Contains(line, readyLine) {
						f.Close()
						return ""
					}
					pending = pending[i+1:]
				}
				if len(pending) > 4096 {
					pending = pending[len(pending)-4096:] // no newline in sight: keep a tail
				}
			}
			f.Close()
		}
		if quiet && time.Since(start) > silentBoot {
			return fmt.Sprintf("the console stayed silent for %v: the emulated Pi hung before its kernel printed a line", silentBoot)
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// readyLine starts the console line with which the node says it is ready.
const readyLine = "skyfleet: ready in "

// sdStall reports whether a kernel console line shows the SD card's host
// controller (the bcm2835 sdhost, "sdhost-bcm2835") stuck. Under QEMU, once
// that driver has timed out on a transfer every later command times out too
// (10 s each), so the node boots without its card, degraded, minutes later.
// The other controller's "mmc1: Timeout waiting for hardware interrupt" is
// not one: that SDHCI serves the Wi-Fi chip, which QEMU does not have.
func sdStall(line string) bool {
	l := strings.ToLower(line)
	if !strings.Contains(l, "sdhost-bcm2835") {
		return false
	}
	return strings.Contains(l, "pio read timeout") || strings.Contains(l, "pio write timeout") ||
		strings.Contains(l, "timeout waiting for hardware interrupt")
}

// firmwareArgs does what the Pi firmware does before the kernel runs: it reads
// config.txt from the image's boot partition, finds the slot's kernel, boot archive,
// command line and device tree, and returns QEMU's -M/-m/-kernel/-dtb/-initrd/-append
// arguments, with the files extracted into dir.
func firmwareArgs(img, dir string, tryboot bool) ([]string, error) {
	fi, err := os.Stat(img)
	if err != nil {
		return nil, err
	}
	if sz := fi.Size(); sz <= 0 || sz&(sz-1) != 0 {
		return nil, fmt.Errorf("%s is %d bytes; QEMU's SD card must be a power of two (build it with 'skyfleet image')", img, sz)
	}
	cfgData, err := images.ReadBootFile(img, "config.txt")
	if err != nil {
		return nil, fmt.Errorf("reading config.txt from %s: %w", img, err)
	}
	cfg, err := board.ParseConfigTXT(cfgData, "pi3", tryboot)
	if err != nil {
		return nil, err
	}
	read := func(name string) ([]byte, error) {
		b, err := images.ReadBootFile(img, cfg.OSPrefix+name)
		if err != nil {
			return nil, fmt.Errorf("reading %s%s from %s: %w", cfg.OSPrefix, name, img, err)
		}
		return b, nil
	}
	cmdline, err := read("cmdline.txt")
	if err != nil {
		return nil, err
	}
	p, err := boardOf(string(cmdline))
	if err != nil {
		return nil, err
	}
	if p.QEMU == nil {
		return nil, fmt.Errorf("the image is for %s, which QEMU cannot emulate; build one with --board %s", p.Name, board.Default)
	}
	files := map[string]string{"kernel": cfg.Kernel, "dtb": p.QEMU.DTB}
	if cfg.Initramfs != "" {
		files["initrd"] = cfg.Initramfs
	}
	paths := map[string]string{}
	for what, name := range files {
		data, err := read(name)
		if err != nil {
			return nil, err
		}
		if what == "dtb" {
			if data, err = firmwareDTB(data); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		paths[what] = filepath.Join(dir, what)
		if err := os.WriteFile(paths[what], data, 0o644); err != nil {
			return nil, err
		}
	}
	// The firmware rewrites console=serial0 to the UART on GPIO 14/15; under QEMU no
	// overlay is applied, so the PL011 keeps the name the DTB's aliases give it.
	line := strings.ReplaceAll(strings.TrimSpace(string(cmdline)), "console=serial0", "console="+p.QEMU.Console)
	// QEMU's BCM2835 power-management model resets the machine as soon as the watchdog
	// is armed (it does not count down), so the node must not arm it under emulation.
	line += " skyfleet.watchdog=off"
	args := []string{"-M", p.QEMU.Machine, "-m", p.QEMU.Memory, "-kernel", paths["kernel"], "-dtb", paths["dtb"], "-append", line}
	if p, ok := paths["initrd"]; ok {
		args = append(args, "-initrd", p)
	}
	return args, nil
}

// boardOf finds skyfleet.board= on a kernel command line.
func boardOf(cmdline string) (board.Profile, error) {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "skyfleet.board="); ok {
			return board.Get(v)
		}
	}
	return board.Profile{}, errors.New("cmdline.txt names no skyfleet.board=: not a Skyfleet image?")
}

// firmwareDTB edits the device tree as the Pi firmware would before starting the
// kernel, plus one change for QEMU:
//   - it adds /chosen/rng-seed, 64 random bytes, as the firmware does: without it the
//     kernel's random number generator may take minutes to initialise under emulation,
//     and the node's first-boot key generation waits for it;
//   - it removes the "bluetooth" child of every UART node. The Pi 3's PL011 is wired to
//     the Bluetooth chip in the downstream device tree; with that node present the
//     kernel hands the UART to hci_uart's serdev and the serial console gets no input;
//   - it binds the USB host controller to the kernel's upstream dwc2 driver (as the
//     firmware's dwc2 overlay does) instead of the Pi's dwc_otg, whose frame-by-frame
//     interrupts kept a whole host core busy emulating an idle node with QEMU's
//     usb-net attached: with one TCG thread (see qargs) the node had no CPU left and
//     its API stopped answering under load. With dwc2 the power-cut test passed in
//     130 s where it had taken 353-370 s.
func firmwareDTB(dtb []byte) ([]byte, error) {
	fdt, err := dt.ReadFDT(bytes.NewReader(dtb))
	if err != nil {
		return nil, fmt.Errorf("device tree: %w", err)
	}
	var walk func(n *dt.Node)
	walk = func(n *dt.Node) {
		if p, ok := n.LookProperty("compatible"); ok && bytes.Contains(p.Value, []byte("brcm,bcm2708-usb")) {
			// The upstream dwc2 driver for the USB host, not the Pi's
			// dwc_otg (see above).
			n.Update(dt.Property{Name: "compatible", Value: []byte("brcm,bcm2835-usb\x00")})
			n.Update(dt.Property{Name: "dr_mode", Value: []byte("host\x00")})
		}
		for i := 0; i < len(n.Children); i++ {
			c := n.Children[i]
			if c.Name == "bluetooth" && strings.HasPrefix(n.Name, "serial@") {
				n.Children = append(n.Children[:i], n.Children[i+1:]...)
				i--
				continue
			}
			walk(c)
		}
	}
	walk(fdt.RootNode)
	seed := make([]byte, 64)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	chosen, ok := fdt.RootNode.LookupChildByName("chosen")
	if !ok {
		chosen = dt.NewNode("chosen")
		fdt.RootNode.Children = append(fdt.RootNode.Children, chosen)
	}
	chosen.Update(dt.Property{Name: "rng-seed", Value: seed})
	var out bytes.Buffer
	if _, err := fdt.Write(&out); err != nil {
		return nil, fmt.Errorf("device tree: %w", err)
	}
	return out.Bytes(), nil
}

// timeoutFlag is --timeout: plain seconds ("400", as scripts and CI configs write
// it) or a Go duration ("5m", "90s", "1h30m"). Negative values are refused.
// displayFlag is --display: a framebuffer size, zero when not given.
type displayFlag struct{ w, h int }

func (d *displayFlag) String() string {
	if d.w == 0 {
		return ""
	}
	return fmt.Sprintf("%dx%d", d.w, d.h)
}

func (d *displayFlag) Set(s string) error {
	ws, hs, ok := strings.Cut(s, "x")
	w, werr := strconv.Atoi(ws)
	h, herr := strconv.Atoi(hs)
	if !ok || werr != nil || herr != nil || w < 128 || h < 128 || w > 1920 || h > 1200 {
		return fmt.Errorf("%q: want WIDTHxHEIGHT in pixels, each from 128 up to 1920x1200, e.g. 480x320", s)
	}
	d.w, d.h = w, h
	return nil
}

// appendTo adds to QEMU's -append the size the firmware would pass the
// kernel's framebuffer driver (bcm2708_fb's fbwidth and fbheight parameters),
// which QEMU's BCM2835 framebuffer then takes through the mailbox.
func (d displayFlag) appendTo(args []string) []string {
	if d.w == 0 {
		return args
	}
	out := slices.Clone(args)
	for i := range len(out) - 1 {
		if out[i] == "-append" {
			out[i+1] += fmt.Sprintf(" bcm2708_fb.fbwidth=%d bcm2708_fb.fbheight=%d", d.w, d.h)
		}
	}
	return out
}

type timeoutFlag time.Duration

func (t *timeoutFlag) String() string { return time.Duration(*t).String() }

func (t *timeoutFlag) Set(s string) error {
	d, err := parseTimeout(s)
	if err != nil {
		return err
	}
	*t = timeoutFlag(d)
	return nil
}

// parseTimeout parses seconds (a non-negative integer) or a Go duration.
func parseTimeout(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is neither seconds (400) nor a duration (5m)", s)
	}
	return d, nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
