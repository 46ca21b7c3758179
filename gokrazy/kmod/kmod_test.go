package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const release = "6.6.31-v8+"

// moduleTree writes a fake /lib/modules/<release> under a temp root.
func moduleTree(t *testing.T, dep, builtin string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "lib/modules", release)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(dep, "\n") {
		mod, _, _ := strings.Cut(line, ":")
		if mod == "" {
			continue
		}
		p := filepath.Join(dir, mod)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("not really an ELF module"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if builtin != "" {
		if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(builtin), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const wifiDep = `kernel/net/rfkill/rfkill.ko.xz:
kernel/net/wireless/cfg80211.ko.xz: kernel/net/rfkill/rfkill.ko.xz
kernel/drivers/net/wireless/broadcom/brcm80211/brcmutil/brcmutil.ko.xz:
kernel/drivers/net/wireless/broadcom/brcm80211/brcmfmac/brcmfmac.ko.xz: kernel/drivers/net/wireless/broadcom/brcm80211/brcmutil/brcmutil.ko.xz kernel/net/wireless/cfg80211.ko.xz
kernel/drivers/bluetooth/hci_uart.ko.xz:
`

func TestLoadOrdersDependenciesAndReportsMissing(t *testing.T) {
	root := moduleTree(t, wifiDep, "kernel/drivers/usb/class/cdc-acm.ko\n")
	var loaded []string
	err := Load([]string{"brcmfmac", "no_such_module", "hci-uart", "cdc_acm"}, Options{
		Root: root, Release: release,
		DryRun: func(p string) { loaded = append(loaded, filepath.Base(p)) },
	})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want *LoadError", err)
	}
	if !slices.Equal(le.Failed, []string{"no_such_module"}) {
		t.Fatalf("Failed = %v, want [no_such_module]", le.Failed)
	}
	if !strings.Contains(err.Error(), "no_such_module") {
		t.Errorf("error text %q does not name the missing module", err)
	}
	// Every module of the brcmfmac closure once, dependencies first;
	// hci_uart despite the earlier failure (named with a hyphen);
	// cdc_acm is built in, so nothing is loaded for it.
	want := map[string]bool{"rfkill.ko.xz": true, "cfg80211.ko.xz": true, "brcmutil.ko.xz": true,
		"brcmfmac.ko.xz": true, "hci_uart.ko.xz": true}
	if len(loaded) != len(want) {
		t.Fatalf("loaded %v, want each of %v once", loaded, want)
	}
	for _, l := range loaded {
		if !want[l] {
			t.Fatalf("unexpected load %s in %v", l, loaded)
		}
	}
	pos := func(n string) int { return slices.Index(loaded, n) }
	if !(pos("rfkill.ko.xz") < pos("cfg80211.ko.xz") && pos("cfg80211.ko.xz") < pos("brcmfmac.ko.xz") &&
		pos("brcmutil.ko.xz") < pos("brcmfmac.ko.xz")) {
		t.Fatalf("dependency order violated: %v", loaded)
	}
}

func TestLoadAllPresent(t *testing.T) {
	root := moduleTree(t, wifiDep, "")
	n := 0
	if err := Load([]string{"cfg80211"}, Options{Root: root, Release: release, DryRun: func(string) { n++ }}); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("loaded %d modules, want 2 (rfkill, cfg80211)", n)
	}
}

func TestLoadWithoutModuleTree(t *testing.T) {
	err := Load([]string{"brcmfmac"}, Options{Root: t.TempDir(), Release: release, DryRun: func(string) {}})
	var le *LoadError
	if err == nil || errors.As(err, &le) {
		t.Fatalf("err = %v, want a plain error about modules.dep", err)
	}
}

func TestCorruptIndexDoesNotPanic(t *testing.T) {
	root := moduleTree(t, "kernel/a.ko\nkernel/b.ko: \n", "")
	if err := Load([]string{"a"}, Options{Root: root, Release: release, DryRun: func(string) {}}); err == nil {
		t.Fatal("corrupt modules.dep accepted")
	}
}

// TestRealLoadFailureIsReported makes the kernel reject a module file
// that is not ELF; no module is actually inserted.
func TestRealLoadFailureIsReported(t *testing.T) {
	root := moduleTree(t, wifiDep, "")
	err := Load([]string{"rfkill"}, Options{Root: root, Release: release})
	var le *LoadError
	if !errors.As(err, &le) || len(le.Failed) != 1 || le.Failed[0] != "rfkill" {
		t.Fatalf("err = %v, want LoadError for rfkill", err)
	}
}
