// Package card lays out a Skyfleet SD card for one board: which files go where on the
// FAT boot partition (firmware at the root, one folder per A/B slot holding the kernel,
// device trees, overlays, boot archive and command line), then hands the list to
// images.Build, which writes the partitions.
package card

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/images"
)

// Default sizes: a 512 MiB card image (QEMU's SD card must be a power of two) with a
// 300 MiB boot partition, room for two slots of ~60 MiB each; above 260 MiB go-diskfs
// picks 4 KiB clusters, as Raspberry Pi OS uses, instead of 512-byte ones. The perm
// partition takes the rest and PID 1 grows it to the real card's size on first boot.
const (
	DefaultSize     = 512 << 20
	DefaultBootSize = 300 << 20
)

// Slot is the slot a fresh card boots.
const Slot = "a"

// Options describes one card.
type Options struct {
	Board       board.Profile
	KernelDir   string // extracted github.com/gokrazy/kernel.rpi: vmlinuz, *.dtb, overlays/
	FirmwareDir string // extracted github.com/gokrazy/firmware: bootcode.bin, start*.elf, ...
	Initramfs   []byte // gzip(newc cpio) from package initramfs
	FleetTOML   []byte // the operator's fleet.toml; nil writes a commented template
	Version     string // Skyfleet version, recorded in the slot's VERSION file
	Size        int64  // whole image in bytes; 0 means DefaultSize
	BootSize    int64  // boot partition in bytes; 0 means DefaultBootSize
}

// BootFiles returns every file of the boot partition, sorted by path. Missing firmware,
// kernel or DTB files are an error naming the file: a card without them cannot boot.
func BootFiles(o Options) ([]images.File, error) {
	var files []images.File
	disk := func(dst, src string) error {
		f, err := images.FromDisk(dst, src)
		if err != nil {
			return fmt.Errorf("card: %s needs %s: %w", o.Board.Name, dst, err)
		}
		files = append(files, f)
		return nil
	}
	mem := func(dst string, data []byte) { files = append(files, images.FromBytes(dst, data)) }
	for _, fw := range o.Board.Firmware {
		if err := disk(fw, filepath.Join(o.FirmwareDir, fw)); err != nil {
			return nil, err
		}
	}
	mem("config.txt", []byte(o.Board.ConfigTXT(Slot, "")))
	fleet := o.FleetTOML
	if fleet == nil {
		fleet = []byte(FleetTemplate)
	}
	mem("fleet.toml", fleet)

	s := Slot + "/"
	if err := disk(s+"vmlinuz", filepath.Join(o.KernelDir, "vmlinuz")); err != nil {
		return nil, err
	}
	for _, dtb := range o.Board.DTBs {
		if err := disk(s+dtb, filepath.Join(o.KernelDir, dtb)); err != nil {
			return nil, err
		}
	}
	overlays, err := filepath.Glob(filepath.Join(o.KernelDir, "overlays", "*"))
	if err != nil {
		return nil, err
	}
	for _, ov := range overlays {
		if err := disk(s+"overlays/"+filepath.Base(ov), ov); err != nil {
			return nil, err
		}
	}
	mem(s+"initrd.gz", o.Initramfs)
	mem(s+"cmdline.txt", []byte(o.Board.CmdlineTXT(Slot)))
	mem(s+"VERSION", []byte(o.Version+"\n"))
	// The other slot exists from the start so an update only ever writes into a folder
	// the running system does not boot from.
	mem("b/VERSION", []byte("empty\n"))
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// Build writes the card image to out (and out.sha256), calling progress with bytes of
// file content written so far and the total.
func Build(out string, o Options, progress func(done, total int64)) error {
	files, err := BootFiles(o)
	if err != nil {
		return err
	}
	size, boot := o.Size, o.BootSize
	if size == 0 {
		size = DefaultSize
	}
	if boot == 0 {
		boot = DefaultBootSize
	}
	return images.Build(out, images.Spec{Size: size, BootSize: boot, Boot: files}, progress)
}

// SlotFiles returns the files of one slot for an update bundle, named relative
// to the slot folder and sorted: what BootFiles puts in the slot, but the kernel
// command line once per slot, as cmdline.a.txt and cmdline.b.txt (it names the
// slot; the updater installs the one for the slot it writes as cmdline.txt).
func SlotFiles(o Options) ([]images.File, error) {
	all, err := BootFiles(o)
	if err != nil {
		return nil, err
	}
	var files []images.File
	for _, f := range all {
		name, ok := strings.CutPrefix(f.Path, Slot+"/")
		if !ok || name == "cmdline.txt" {
			continue
		}
		f.Path = name
		files = append(files, f)
	}
	for _, slot := range board.Slots {
		files = append(files, images.FromBytes("cmdline."+slot+".txt", []byte(o.Board.CmdlineTXT(slot))))
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// SlotPath joins a slot folder and a file name as it appears on the boot partition.
func SlotPath(slot, name string) string { return path.Join(slot, name) }

// FleetTemplate is written as fleet.toml when the operator gives none: every key
// commented out, so the node boots with defaults and the file teaches what can be set.
const FleetTemplate = `# Skyfleet node configuration. Edit on the boot partition, then reboot.
# Problems are listed on the status page (config_errors). A file that cannot be
# read (a syntax error, over 1 MiB) or a bad security key (psk, listen,
# lan_discovery, known_peers_only, ...) makes the node refuse every mesh link
# until it is fixed; a missing psk only warns (any node can then link).

[node]
# name = "kit-07"
# listen = ["udp://0.0.0.0:5505"]
# status = "0.0.0.0:80"

[network]
# psk = "64 hex characters, the same on every node of the mesh"
# peers = ["udp://192.0.2.10:5505#03ab...node public key hex"]
# address = "192.0.2.5/24"   # static IPv4; leave out for DHCP
# gateway = "192.0.2.1"

[master]
# public_key = "03..."

[radio]
# callsign = "N0CALL-7"

[messaging]
# The messaging page for phones, http://<this node>/msg/: people on the node's
# network log in with a passphrase of 8 characters or more, or open = true lets
# anyone use it. Neither: closed to phones.
# passphrase = "..."
# open = false
`
