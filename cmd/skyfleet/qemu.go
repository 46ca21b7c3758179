package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/u-root/u-root/pkg/dt"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/images"
)

func cmdQEMU(args []string) error {
	fs := newFlags("qemu", "qemu --image OUT.img [--status-port P] [--serial FILE] [--timeout S]",
		"skyfleet qemu --image skyfleet.img --status-port 8080   # then: curl 127.0.0.1:8080/status")
	img := fs.String("image", "skyfleet.img", "SD-card image built by 'skyfleet image' for a board QEMU can emulate (rpi3b); QEMU writes to it like a real card")
	port := fs.Int("status-port", 8080, "host port on 127.0.0.1 forwarded to the node's status API (guest port 80)")
	meshPort := fs.Int("mesh-port", 0, "host UDP port on 127.0.0.1 forwarded to the node's mesh port 5505 (0: none)")
	serial := fs.String("serial", "", "also write the serial console to this file")
	timeout := fs.Duration("timeout", 0, "stop QEMU after this long (e.g. 5m); exit status 3 (0: run until the guest powers off)")
	tryboot := fs.Bool("tryboot", false, "boot as the firmware does after 'reboot 0 tryboot': [tryboot] sections apply")
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
	qargs, err := firmwareArgs(*img, dir, *tryboot)
	if err != nil {
		return err
	}
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
	if *serial != "" {
		con += ",logfile=" + *serial
	}
	qargs = append(qargs,
		"-drive", "if=sd,format=raw,file="+*img,
		"-usb", "-device", "usb-net,netdev=net0",
		"-netdev", "user,id=net0,"+fwd,
		"-display", "none", "-no-reboot",
		"-chardev", con, "-serial", "chardev:con")
	if isTerminal(os.Stdin) {
		qargs = append(qargs, "-mon", "chardev=con")
	} else {
		qargs = append(qargs, "-monitor", "none")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, bin, qargs...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		fmt.Fprintf(os.Stderr, "skyfleet qemu: timeout after %s, QEMU stopped\n", *timeout)
		return exitError(3)
	}
	if ctx.Err() != nil {
		return nil // interrupted by the operator
	}
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
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
//     kernel hands the UART to hci_uart's serdev and the serial console gets no input.
func firmwareDTB(dtb []byte) ([]byte, error) {
	fdt, err := dt.ReadFDT(bytes.NewReader(dtb))
	if err != nil {
		return nil, fmt.Errorf("device tree: %w", err)
	}
	var walk func(n *dt.Node)
	walk = func(n *dt.Node) {
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

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
