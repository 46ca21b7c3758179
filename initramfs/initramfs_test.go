package initramfs

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/internal/gomod"
)

func kernelModules(t *testing.T) (release, dir string) {
	t.Helper()
	kdir, _, err := gomod.Payload()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := KernelRelease(kdir)
	if err != nil {
		t.Fatal(err)
	}
	return rel, filepath.Join(kdir, "lib", "modules", rel)
}

func TestArchiveHasInitModulesAndConsole(t *testing.T) {
	rel, mdir := kernelModules(t)
	spec := Spec{
		Init:          []byte("\x7fELF fake init"),
		Tools:         map[string][]byte{"/bbin/bb": []byte("bb")},
		Symlinks:      map[string]string{"/bbin/ls": "bb"},
		KernelRelease: rel,
		ModulesDir:    mdir,
		Modules:       []string{"brcmfmac"},
	}
	var a, b bytes.Buffer
	st, err := Write(&a, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(&b, spec); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same inputs gave different archives; builds must be reproducible")
	}
	names, err := List(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	base := "lib/modules/" + rel + "/"
	for _, want := range []string{"init", "dev/console", "proc", "sys", "perm", "boot", "bbin/bb", "bbin/ls",
		base + "modules.dep",
		base + "kernel/drivers/net/wireless/broadcom/brcm80211/brcmfmac/brcmfmac.ko",
		// brcmfmac depends on brcmutil in modules.dep: the closure must carry it.
		base + "kernel/drivers/net/wireless/broadcom/brcm80211/brcmutil/brcmutil.ko",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("archive lacks %s", want)
		}
	}
	if len(st.Modules) != 2 {
		t.Errorf("modules %v, want brcmfmac and brcmutil only", st.Modules)
	}
	for _, n := range names {
		if strings.Contains(n, "bluetooth") {
			t.Errorf("archive carries a module nobody asked for: %s", n)
		}
	}
}

func TestMissingModuleIsNamed(t *testing.T) {
	rel, mdir := kernelModules(t)
	_, err := Write(&bytes.Buffer{}, Spec{Init: []byte("x"), KernelRelease: rel, ModulesDir: mdir, Modules: []string{"brcmfmac", "no_such_mod"}})
	if err == nil || !strings.Contains(err.Error(), "no_such_mod") {
		t.Fatalf("err = %v, want one naming no_such_mod", err)
	}
	if _, err := Write(&bytes.Buffer{}, Spec{}); err == nil {
		t.Error("archive without init accepted")
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/x/brcm-fmac.ko": "brcm_fmac", "hci_uart.ko.xz": "hci_uart", "snd-usb-audio": "snd_usb_audio",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestListRejectsGarbage(t *testing.T) {
	if _, err := List(strings.NewReader("not gzip")); err == nil {
		t.Error("garbage accepted")
	}
}

func FuzzList(f *testing.F) {
	var buf bytes.Buffer
	if _, err := Write(&buf, Spec{Init: []byte("init")}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		List(bytes.NewReader(data)) // must not panic
	})
}

func TestKernelReleaseErrors(t *testing.T) {
	if _, err := KernelRelease(t.TempDir()); err == nil {
		t.Error("empty dir accepted")
	}
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "lib/modules/1"), 0o755)
	os.MkdirAll(filepath.Join(d, "lib/modules/2"), 0o755)
	if _, err := KernelRelease(d); err == nil {
		t.Error("two releases accepted")
	}
}

// bbin_tools.go keeps each command's dependencies in go.mod; a command missing there
// breaks the busybox build on a clean machine.
func TestToolsFileListsCommands(t *testing.T) {
	src, err := os.ReadFile("bbin_tools.go")
	if err != nil {
		t.Fatal(err)
	}
	var imported []string
	for _, line := range strings.Split(string(src), "\n") {
		if _, p, ok := strings.Cut(line, `"github.com/u-root/u-root/cmds/core/`); ok {
			imported = append(imported, strings.TrimSuffix(p, `"`))
		}
	}
	want := slices.Clone(Commands)
	slices.Sort(want)
	slices.Sort(imported)
	if !slices.Equal(imported, want) {
		t.Errorf("bbin_tools.go imports %v\nCommands are %v", imported, Commands)
	}
	links := BusyboxLinks()
	if links["/bbin/poweroff"] != "/init" || links["/bbin/ls"] != "bb" {
		t.Errorf("links %v", links)
	}
}

// A bare commit hash is never taken for a release version, even when it is
// all digits; a tag's description is kept.
func TestStampVersion(t *testing.T) {
	for in, want := range map[string]string{
		"9057919":                 "g9057919",
		"6243269-dirty":           "g6243269-dirty",
		"96110d8":                 "g96110d8",
		"v1.4.0":                  "v1.4.0",
		"v1.4.0-3-g9057919":       "v1.4.0-3-g9057919",
		"1.4.0-dirty":             "1.4.0-dirty",
		"v1.4.0-3-g9057919-dirty": "v1.4.0-3-g9057919-dirty",
	} {
		if got := stampVersion(in); got != want {
			t.Errorf("stampVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// Data files (the Wi-Fi firmware) land at their paths with their parents; a path
// given twice or not clean is refused.
func TestDataFiles(t *testing.T) {
	var buf bytes.Buffer
	if _, err := Write(&buf, Spec{Init: []byte("init"), Files: map[string][]byte{"/lib/firmware/brcm/x.bin": []byte("fw")}}); err != nil {
		t.Fatal(err)
	}
	names, _ := List(bytes.NewReader(buf.Bytes()))
	for _, want := range []string{"lib/firmware", "lib/firmware/brcm", "lib/firmware/brcm/x.bin"} {
		if !slices.Contains(names, want) {
			t.Errorf("archive lacks %s: %v", want, names)
		}
	}
	if _, err := Write(&bytes.Buffer{}, Spec{Init: []byte("init"), Files: map[string][]byte{"/init": []byte("x")}}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a file over /init: err = %v", err)
	}
	if _, err := Write(&bytes.Buffer{}, Spec{Init: []byte("init"), Files: map[string][]byte{"lib/../x": []byte("x")}}); err == nil {
		t.Error("an unclean path accepted")
	}
}
