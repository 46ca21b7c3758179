// Package wififw gathers the Wi-Fi firmware a board's card carries: it fetches
// Debian's firmware-brcm80211 package (or takes a directory the operator names) and
// picks from it exactly the files brcmfmac will ask for on that board, under the names
// it will ask for (board.Profile.WiFiFirmware).
//
// The files go into the initramfs under /lib/firmware: PID 1 loads brcmfmac from the
// initramfs, which is also the root filesystem, and the kernel's firmware loader looks
// in /lib/firmware. The pinned kernel has no CONFIG_FW_LOADER_COMPRESS, so a file the
// source holds only compressed (.zst, .xz, as newer Debian packages do) is
// decompressed here.
package wififw

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/skyfleet/skyfleet/board"
)

// Package is the Debian package the firmware comes from by default (component
// non-free-firmware; scripts/deps.sh adds that component to apt's sources).
const Package = "firmware-brcm80211"

// RegdbPackage is the Debian package (main) holding the wireless regulatory database
// that cfg80211, built into the kernel, loads at boot as regulatory.db and checks
// against regulatory.db.p7s: without it the kernel logs a failed firmware load and
// keeps to the world domain's channels.
const RegdbPackage = "wireless-regdb"

// regdbNames are the files cfg80211 loads, with the names a source may hold them
// under: Debian's wireless-regdb installs them through update-alternatives, and this
// kernel checks the signature with the kernel's built-in (upstream) key, so the
// -upstream files are the ones that verify.
var regdbNames = []struct {
	path string
	alts []string
}{
	{"regulatory.db", []string{"regulatory.db", "regulatory.db-upstream"}},
	{"regulatory.db.p7s", []string{"regulatory.db.p7s", "regulatory.db.p7s-upstream"}},
}

// Regdb reads the regulatory database and its signature from dir (laid out as
// /lib/firmware), to be placed as /lib/firmware/regulatory.db and .p7s. A missing
// file is an error naming the names tried and source.
func Regdb(dir, source string) ([]File, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("regulatory database: %s: %w", source, err)
	}
	defer root.Close()
	var files []File
	for _, n := range regdbNames {
		var data []byte
		var src string
		for _, alt := range n.alts {
			data, src, err = read(root, alt)
			if err == nil || !errors.Is(err, iofs.ErrNotExist) {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("regulatory database: none of %s in %s (cfg80211 loads it at boot; pass --no-wifi-firmware to build without)", strings.Join(n.alts, ", "), source)
		}
		if len(data) == 0 {
			return nil, fmt.Errorf("regulatory database: %s in %s is empty", src, source)
		}
		files = append(files, File{Path: n.path, Source: filepath.Join(dir, filepath.FromSlash(src)), Data: data, For: []string{"cfg80211"}})
	}
	return files, nil
}

// File is one firmware file chosen for the card.
type File struct {
	// Path is where the kernel finds it, relative to /lib/firmware, e.g.
	// "brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.txt".
	Path string
	// Source is the file it was read from (symlinks resolved inside the source, a
	// compressed suffix kept), for messages.
	Source string
	// Data is the content, decompressed.
	Data []byte
	// For lists the radios (board.Radio.Model) that need it.
	For []string
}

// Missing is the error Select returns when the source lacks files a board needs: one
// entry per missing file, each naming every name the kernel would try.
type Missing struct {
	// Board is the board's short name.
	Board string
	// Source describes where the files were looked for, e.g. "Debian's
	// firmware-brcm80211 20230210-5 (/root/.cache/...)" or "--firmware /x".
	Source string
	// Files are the missing files.
	Files []board.FirmwareFile
}

func (m *Missing) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Wi-Fi firmware for %s: %d file(s) missing from %s:", m.Board, len(m.Files), m.Source)
	for _, f := range m.Files {
		fmt.Fprintf(&b, "\n  %s %s for the %s: none of %s", f.Radio.Chip, f.Kind, f.Radio.Model, strings.Join(f.Names, ", "))
	}
	b.WriteString("\nWithout them Wi-Fi cannot come up on that model. Pass --firmware DIR with those files laid out as brcm/... " +
		"(e.g. from Raspberry Pi OS's /lib/firmware), or --no-wifi-firmware to build a card without Wi-Fi firmware.")
	return b.String()
}

// compressed are the suffixes a source may add to a name, with their decoders; the
// plain name wins when both exist.
var compressed = []struct {
	ext    string
	decode func([]byte) ([]byte, error)
}{
	{".zst", func(b []byte) ([]byte, error) {
		d, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(b, nil)
	}},
	{".xz", func(b []byte) ([]byte, error) {
		r, err := xz.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	}},
}

// Select reads from dir (laid out like /lib/firmware: brcm/..., cypress/...) the files
// p's radios need, taking for each the first name the kernel tries that dir holds
// (plain, or with a .zst or .xz suffix, decompressed) and placing it under that name.
// A path two radios share is returned once. source describes dir in errors. Symlinks
// are followed only inside dir (Debian links brcm/ names to cypress/ files). If any
// file is missing it returns the files it found and a *Missing naming all the others
// (the caller decides whether a card without some model's files is acceptable); any
// other error (an unreadable file, a symlink out of dir, a corrupt compressed file)
// names the file and returns no files.
func Select(p board.Profile, dir, source string) ([]File, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("Wi-Fi firmware: %s: %w", source, err)
	}
	defer root.Close()
	var files []File
	index := map[string]int{}
	missing := &Missing{Board: p.Name, Source: source}
	for _, need := range p.WiFiFirmware() {
		found := false
		for _, name := range need.Names {
			if i, ok := index[name]; ok {
				files[i].For = appendNew(files[i].For, need.Radio.Model)
				found = true
				break
			}
			data, src, err := read(root, name)
			if errors.Is(err, iofs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("Wi-Fi firmware: %s in %s: %w", name, source, err)
			}
			if len(data) == 0 {
				return nil, fmt.Errorf("Wi-Fi firmware: %s in %s is empty", src, source)
			}
			index[name] = len(files)
			files = append(files, File{Path: name, Source: filepath.Join(dir, filepath.FromSlash(src)), Data: data, For: []string{need.Radio.Model}})
			found = true
			break
		}
		if !found {
			missing.Files = append(missing.Files, need)
		}
	}
	if len(missing.Files) > 0 {
		return files, missing
	}
	return files, nil
}

// read returns the content of name in root, or of name plus a compression suffix,
// decompressed, and the name it read. A missing file is an error wrapping
// fs.ErrNotExist.
func read(root *os.Root, name string) ([]byte, string, error) {
	data, err := readRegular(root, name)
	if err == nil || !errors.Is(err, iofs.ErrNotExist) {
		return data, name, err
	}
	for _, c := range compressed {
		raw, err := readRegular(root, name+c.ext)
		if errors.Is(err, iofs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, name + c.ext, err
		}
		data, err := c.decode(raw)
		if err != nil {
			return nil, name + c.ext, fmt.Errorf("decompress %s: %w", name+c.ext, err)
		}
		return data, name + c.ext, nil
	}
	return nil, name, iofs.ErrNotExist
}

// readRegular reads name through root, so symlinks resolve inside it; a name that is
// a directory is an error, not a file.
func readRegular(root *os.Root, name string) ([]byte, error) {
	fi, err := root.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	return root.ReadFile(name)
}

func appendNew(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// Bytes is the total size of files' contents, in bytes.
func Bytes(files []File) int64 {
	var n int64
	for _, f := range files {
		n += int64(len(f.Data))
	}
	return n
}

// InitramfsFiles returns files keyed by their absolute path in the initramfs,
// /lib/firmware/<Path>, for initramfs.Spec.Files.
func InitramfsFiles(files []File) map[string][]byte {
	m := make(map[string][]byte, len(files))
	for _, f := range files {
		m[path.Join("/lib/firmware", f.Path)] = f.Data
	}
	return m
}

// Debian returns the /lib/firmware directory of Debian's package pkg (Package or
// RegdbPackage) at the newest version apt's lists hold (backports included, see
// candidate), and that version. The package is fetched with `apt-get
// download` (never installed) and unpacked with dpkg-deb -x into
// cacheDir/<pkg>_<version>/, which later builds reuse without asking the
// network. log is told before anything is downloaded. Errors say what to do when apt
// does not know the package (its component is missing from apt's sources) or is not
// there at all.
func Debian(pkg, cacheDir string, log func(string)) (dir, version string, err error) {
	version, err = candidate(pkg)
	if err != nil {
		return "", "", err
	}
	final := filepath.Join(cacheDir, pkg+"_"+strings.ReplaceAll(version, ":", "%3a"))
	dir = filepath.Join(final, "lib", "firmware")
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir, version, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", "", fmt.Errorf("Wi-Fi firmware cache: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-")
	if err != nil {
		return "", "", fmt.Errorf("Wi-Fi firmware cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	log(fmt.Sprintf("downloading Debian's %s %s (apt-get download; not installed) into %s", pkg, version, final))
	if out, err := run(tmp, "apt-get", "download", pkg+"="+version); err != nil {
		return "", "", fmt.Errorf("apt-get download %s=%s: %v\n%s", pkg, version, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return "", "", fmt.Errorf("apt-get download %s=%s left %d .deb files in %s, want 1", pkg, version, len(debs), tmp)
	}
	x := filepath.Join(tmp, "x")
	if out, err := run(tmp, "dpkg-deb", "-x", debs[0], x); err != nil {
		return "", "", fmt.Errorf("dpkg-deb -x %s: %v\n%s", filepath.Base(debs[0]), err, out)
	}
	if _, err := os.Stat(filepath.Join(x, "lib", "firmware")); err != nil {
		// Newer packages put it under /usr/lib (merged /usr).
		if _, uerr := os.Stat(filepath.Join(x, "usr", "lib", "firmware")); uerr == nil {
			if err := os.Rename(filepath.Join(x, "usr", "lib"), filepath.Join(x, "lib")); err != nil {
				return "", "", err
			}
		} else {
			return "", "", fmt.Errorf("%s %s holds no lib/firmware", pkg, version)
		}
	}
	// The rename makes the cache entry appear whole or not at all.
	if err := os.Rename(x, final); err != nil && !isExist(err) {
		return "", "", fmt.Errorf("Wi-Fi firmware cache: %w", err)
	}
	return dir, version, nil
}

// candidate returns the newest version of pkg that apt's lists hold, from any suite:
// apt's own candidate would be stable's, and bookworm's firmware-brcm80211 (20230210)
// lacks the Zero 2 W's and Pi 5's NVRAM that backports' newer package carries
// (scripts/deps.sh adds that suite). Only downloaded, so no pin applies.
func candidate(pkg string) (string, error) {
	out, err := run("", "apt-cache", "madison", pkg)
	if err != nil {
		return "", fmt.Errorf("Wi-Fi firmware: apt-cache madison %s: %v\n%s\n(no apt here? pass --firmware DIR or --no-wifi-firmware)", pkg, err, out)
	}
	best := ""
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "|")
		if len(f) < 3 || strings.TrimSpace(f[0]) != pkg {
			continue
		}
		v := strings.TrimSpace(f[1])
		if v == "" {
			continue
		}
		if best == "" {
			best = v
			continue
		}
		// dpkg orders Debian versions (epochs, ~ before anything); exit 0 means v > best.
		if _, err := run("", "dpkg", "--compare-versions", v, "gt", best); err == nil {
			best = v
		}
	}
	if best == "" {
		return "", fmt.Errorf("Wi-Fi firmware: apt knows no installable %s: Debian's non-free-firmware component is missing from apt's sources, or the lists are stale (as root, `make deps` adds it and runs apt-get update); or pass --firmware DIR or --no-wifi-firmware", pkg)
	}
	return best, nil
}

func run(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// isExist reports whether err is a rename onto a cache entry another build made first.
func isExist(err error) bool {
	return errors.Is(err, iofs.ErrExist) || strings.Contains(err.Error(), "directory not empty")
}
