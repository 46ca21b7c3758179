package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/images/card"
	"github.com/skyfleet/skyfleet/initramfs"
	"github.com/skyfleet/skyfleet/internal/gomod"
	"github.com/skyfleet/skyfleet/internal/progress"
)

func cmdImage(args []string) error {
	fs := newFlags("image", "image --board B [--fleet fleet.toml] -o OUT.img",
		"skyfleet image --board rpi4b --fleet fleet.toml -o kit-07.img && sudo dd if=kit-07.img of=/dev/sdX bs=4M conv=fsync")
	boardName := fs.String("board", board.Default, "board profile: "+fmt.Sprint(board.Names()))
	fleet := fs.String("fleet", "", "fleet.toml to put on the boot partition (default: a commented template)")
	out := fs.String("o", "skyfleet.img", "output image path; a .sha256 file is written beside it")
	size := fs.Int64("size", card.DefaultSize>>20, "image size in MiB (a power of two; the node grows /perm to the card on first boot)")
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
	opts, err := prepare(p, fleetData, "")
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
	return nil
}

// prepare fetches the pinned kernel and firmware modules, compiles skyfleetd for the
// board and writes its boot archive: everything a card needs but the disk layout.
// version is the version skyfleetd reports and the slot records; "" takes git
// describe's (or "dev").
func prepare(p board.Profile, fleet []byte, version string) (card.Options, error) {
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
	var rd bytes.Buffer
	st, err := initramfs.Write(&rd, initramfs.Spec{
		Init:          init,
		Tools:         map[string][]byte{"/bbin/bb": bb},
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
