package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/images/card"
	"github.com/skyfleet/skyfleet/initramfs"
	"github.com/skyfleet/skyfleet/internal/gomod"
	"github.com/skyfleet/skyfleet/internal/progress"
	"github.com/skyfleet/skyfleet/wififw"
)

func cmdImage(args []string) error {
	fs := newFlags("image", "image --board B [--fleet fleet.toml] [--firmware DIR | --no-wifi-firmware] -o OUT.img",
		"skyfleet image --board rpi4b --fleet fleet.toml --firmware /media/$USER/rootfs/lib/firmware -o kit-07.img && sudo dd if=kit-07.img of=/dev/sdX bs=4M conv=fsync")
	boardName := fs.String("board", board.Default, "board profile: "+fmt.Sprint(board.Names()))
	fleet := fs.String("fleet", "", "fleet.toml to put on the boot partition (default: a commented template)")
	out := fs.String("o", "skyfleet.img", "output image path; a .sha256 file is written beside it")
	size := fs.Int64("size", card.DefaultSize>>20, "image size in MiB (a power of two; the node grows /perm to the card on first boot)")
	wifi := addWiFiFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := board.Get(*boardName)
	if err != nil {
		return err
	}
	var fleetData []byte
	if *fleet != "" {
		if fleetData, err = os.ReadFile(*fleet); err != nil {
			return err
		}
	}
	opts, err := prepare(p, fleetData, "", wifi.source())
	if err != nil {
		return err
	}
	opts.Size = *size << 20
	bar := progress.New(os.Stderr, "writing "+filepath.Base(*out))
	if err := card.Build(*out, opts, bar.Update); err != nil {
		return err
	}
	bar.Done()
	fmt.Fprintf(os.Stderr, "%s: %s card, %s, slot %s, version %s\n", *out, p.Name, progress.MiB(opts.Size), card.Slot, opts.Version)
	if *wifi.none {
		// Said again last, where the operator looks, so a card without Wi-Fi is never a surprise.
		fmt.Fprintf(os.Stderr, "WARNING: %s carries NO Wi-Fi firmware (--no-wifi-firmware): Wi-Fi will not come up on it\n", *out)
	}
	return nil
}

// wifiFlags are the flags that choose where a card's Wi-Fi firmware comes from; the
// image and update build commands share them.
type wifiFlags struct {
	dir  *string
	none *bool
}

func addWiFiFlags(fs *flag.FlagSet) wifiFlags {
	return wifiFlags{
		dir: fs.String("firmware", "", "take the Wi-Fi firmware and regulatory.db(.p7s) from `DIR`, laid out as /lib/firmware is (brcm/brcmfmac43455-sdio.bin, ...), "+
			"instead of Debian's "+wififw.Package+" and "+wififw.RegdbPackage+" (fetched with apt-get download, never installed, cached per version; make deps adds the non-free-firmware component). "+
			"Debian 12's package holds the Pi 3B, 3B+ and 4B files only: the Pi 400, Pi 5 and Zero 2 W need DIR (e.g. Raspberry Pi OS's /lib/firmware)"),
		none: fs.Bool("no-wifi-firmware", false, "build the card without Wi-Fi firmware or regulatory database: the driver loads but Wi-Fi stays down (the build says so)"),
	}
}

func (w wifiFlags) source() wifiSource { return wifiSource{Dir: *w.dir, None: *w.none} }

// wifiSource says where prepare takes the Wi-Fi firmware from.
type wifiSource struct {
	// Dir is a directory laid out as /lib/firmware; "" means Debian's package.
	Dir string
	// None builds without Wi-Fi firmware.
	None bool
}

// prepare fetches the pinned kernel and firmware modules, compiles skyfleetd for the
// board, gathers its Wi-Fi firmware from wifi and writes its boot archive: everything a
// card needs but the disk layout. version is the version skyfleetd reports and the
// slot records; "" takes git describe's (or "dev"). A Wi-Fi firmware file the board
// needs and the source lacks is an error naming it and the source (a *wififw.Missing).
func prepare(p board.Profile, fleet []byte, version string, wifi wifiSource) (card.Options, error) {
	root, err := gomod.Root()
	if err != nil {
		return card.Options{}, err
	}
	step := func(s string) { fmt.Fprintf(os.Stderr, "%s\n", s) }
	step("fetching kernel and firmware modules (go mod download)")
	kdir, fwdir, err := gomod.Payload()
	if err != nil {
		return card.Options{}, err
	}
	rel, err := initramfs.KernelRelease(kdir)
	if err != nil {
		return card.Options{}, err
	}
	ver := version
	if ver == "" {
		ver = initramfs.Version(root)
	}
	step("compiling skyfleetd for linux/arm64")
	init, err := initramfs.Compile(root, "./cmd/skyfleetd", "arm64", ver)
	if err != nil {
		return card.Options{}, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	step("building u-root tools into /bbin/bb (cached after the first build)")
	bb, err := initramfs.Busybox(root, "arm64", filepath.Join(cache, "skyfleet"))
	if err != nil {
		return card.Options{}, err
	}
	fw, err := wifiFirmware(p, wifi, filepath.Join(cache, "skyfleet", "firmware"), step)
	if err != nil {
		return card.Options{}, err
	}
	var rd bytes.Buffer
	st, err := initramfs.Write(&rd, initramfs.Spec{
		Init:          init,
		Tools:         map[string][]byte{"/bbin/bb": bb},
		Files:         wififw.InitramfsFiles(fw),
		Symlinks:      initramfs.BusyboxLinks(),
		KernelRelease: rel,
		ModulesDir:    filepath.Join(kdir, "lib", "modules", rel),
		Modules:       p.Modules,
	})
	if err != nil {
		return card.Options{}, err
	}
	step(fmt.Sprintf("initramfs: %d files, %s raw, %s compressed, kernel %s", st.Files, progress.MiB(int64(st.Bytes)), progress.MiB(int64(rd.Len())), rel))
	return card.Options{Board: p, KernelDir: kdir, FirmwareDir: fwdir, Initramfs: rd.Bytes(), FleetTOML: fleet, Version: ver}, nil
}

// wifiFirmware gathers the board's Wi-Fi firmware from wifi (Debian's package, cached
// in cacheDir, when wifi names no directory) and lists each file through step.
func wifiFirmware(p board.Profile, wifi wifiSource, cacheDir string, step func(string)) ([]wififw.File, error) {
	if wifi.None {
		if wifi.Dir != "" {
			return nil, fmt.Errorf("--firmware and --no-wifi-firmware contradict each other")
		}
		step("WARNING: --no-wifi-firmware: this card carries NO Wi-Fi firmware; brcmfmac loads, but Wi-Fi will not come up on any " + p.Name + " model")
		return nil, nil
	}
	var dir, source, regDir, regSource string
	if wifi.Dir != "" {
		dir, source = wifi.Dir, "--firmware "+wifi.Dir
		regDir, regSource = dir, source
		step("Wi-Fi firmware from " + wifi.Dir)
	} else {
		step("Wi-Fi firmware from Debian's " + wififw.Package + " and " + wififw.RegdbPackage + " (cached per version after the first download)")
		d, ver, err := wififw.Debian(wififw.Package, cacheDir, step)
		if err != nil {
			return nil, err
		}
		dir, source = d, fmt.Sprintf("Debian's %s %s (%s)", wififw.Package, ver, d)
		if regDir, ver, err = wififw.Debian(wififw.RegdbPackage, cacheDir, step); err != nil {
			return nil, err
		}
		regSource = fmt.Sprintf("Debian's %s %s (%s)", wififw.RegdbPackage, ver, regDir)
	}
	files, err := wififw.Select(p, dir, source)
	var missing *wififw.Missing
	if errors.As(err, &missing) && wifi.Dir == "" {
		// No Debian package carries some Raspberry Pi models' files (the Pi 400's
		// 43456, the Zero 2 W's 43436; bookworm's own also lacks the Zero 2 W's
		// and Pi 5's NVRAM, which backports has): the card is still built, for
		// the models it serves, and the operator is told which will have no
		// Wi-Fi. A directory given with --firmware must be complete.
		for _, l := range strings.Split(missing.Error(), "\n") {
			step("WARNING: " + l)
		}
	} else if err != nil {
		return nil, err
	}
	reg, err := wififw.Regdb(regDir, regSource)
	if err != nil {
		return nil, err
	}
	files = append(files, reg...)
	for _, f := range files {
		step(fmt.Sprintf("  /lib/firmware/%s  %d bytes  for %s", f.Path, len(f.Data), strings.Join(f.For, ", ")))
	}
	step(fmt.Sprintf("Wi-Fi firmware: %d files, %d bytes before compression, in the initramfs", len(files), wififw.Bytes(files)))
	return files, nil
}
