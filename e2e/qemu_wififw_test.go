//go:build e2e

package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testQEMUWiFiFirmware, on the shared boot: PID 1 loaded the Wi-Fi modules in order
// (brcmutil, brcmfmac, then both firmware-vendor modules, each using the one before),
// the initramfs holds at /lib/firmware every firmware file the image build listed with
// the size it listed, and the kernel logged no brcmfmac error and no failed firmware
// load. QEMU's raspi3b has no Wi-Fi chip on its SDIO bus, so the driver never asks for
// the firmware here: what this shows is that the files are where the kernel looks and
// that loading the modules leaves nothing missing for the emulated board. The Wi-Fi
// service runs and reports the radio absent.
func testQEMUWiFiFirmware(t *testing.T, g *sharedVM) {
	v, s, m := g.vm.in(t), g.status, g.master
	exec := func(args ...string) string {
		t.Helper()
		out, err := m.cli(append([]string{"exec", "--key", m.keyFile, s.Address, "--"}, args...)...)
		if err != nil {
			t.Fatalf("exec %v: %v\n%s\nserial:\n%s", args, err, out, v.tail())
		}
		return out
	}

	// PID 1 loads the modules in a goroutine while it boots; they are in by now,
	// but poll rather than assume.
	want := []string{"brcmutil", "brcmfmac", "brcmfmac_wcc", "brcmfmac_cyw"}
	var mods map[string]string // name -> "used by" column
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mods = map[string]string{}
		for _, l := range strings.Split(exec("cat", "/proc/modules"), "\n") {
			if f := strings.Fields(l); len(f) >= 4 {
				mods[f[0]] = f[3]
			}
		}
		if _, ok := mods["brcmfmac_cyw"]; ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, w := range want {
		if _, ok := mods[w]; !ok {
			t.Errorf("module %s not loaded; /proc/modules has %v", w, mods)
		}
	}
	// A module's "used by" lists those loaded after it that need it.
	if !strings.Contains(mods["brcmutil"], "brcmfmac") || !strings.Contains(mods["brcmfmac"], "brcmfmac_wcc") || !strings.Contains(mods["brcmfmac"], "brcmfmac_cyw") {
		t.Errorf("modules not stacked brcmutil <- brcmfmac <- brcmfmac_wcc, brcmfmac_cyw: %v", mods)
	}
	if strings.Contains(v.log(), "skyfleet: modules:") {
		t.Errorf("PID 1 reported a module failure on the console:\n%s", v.tail())
	}

	// The files the build listed ("  /lib/firmware/brcm/X  N bytes  for ..."), with
	// their sizes, read back on the node.
	listed := regexp.MustCompile(`(?m)^  (/lib/firmware/\S+)  (\d+) bytes  for `).FindAllStringSubmatch(g.built, -1)
	if len(listed) == 0 {
		t.Fatalf("the image build listed no Wi-Fi firmware:\n%s", g.built)
	}
	args := []string{"wc", "-c"}
	size := map[string]int{}
	for _, l := range listed {
		args = append(args, l[1])
		size[l[1]], _ = strconv.Atoi(l[2])
	}
	for _, l := range strings.Split(strings.TrimSpace(exec(args...)), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		n, _ := strconv.Atoi(f[0])
		if want, ok := size[f[1]]; ok {
			if n != want || n == 0 {
				t.Errorf("%s is %d bytes on the node, the build put %d", f[1], n, want)
			}
			delete(size, f[1])
		}
	}
	for p := range size {
		t.Errorf("%s: not on the node", p)
	}
	t.Logf("%d Wi-Fi firmware files at /lib/firmware on the node, as built", len(listed))

	// The kernel's own log, all levels (the console shows only errors): nothing from
	// the driver failed and no firmware load failed.
	bad := regexp.MustCompile(`(?i)(brcmf.*(fail|error|err=|timeout))|direct firmware load|firmware: failed`)
	var brcm []string
	for _, l := range strings.Split(exec("dmesg"), "\n") {
		if strings.Contains(strings.ToLower(l), "brcm") || strings.Contains(strings.ToLower(l), "firmware") {
			brcm = append(brcm, l)
		}
		if bad.MatchString(l) && !strings.Contains(l, "raspberrypi-exp-gpio") && !strings.Contains(l, "brcmvirt-gpio") {
			t.Errorf("kernel log: %s", l)
		}
	}
	t.Logf("kernel log, brcm and firmware lines:\n%s", strings.Join(brcm, "\n"))

	// The Wi-Fi service runs and, with no radio on the emulated board, says so in
	// the public /status (it polls for the radio every 2 s, so poll too).
	var st struct {
		Wifi *struct {
			Mode  string `json:"mode"`
			State string `json:"state"`
			Error string `json:"error"`
		} `json:"wifi"`
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		v.get("/status", &st)
		if st.Wifi != nil && st.Wifi.State == "absent" || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if st.Wifi == nil || st.Wifi.State != "absent" || st.Wifi.Mode != "peer" {
		t.Errorf("/status wifi = %+v, want the service's peer mode with its radio absent", st.Wifi)
	} else {
		t.Logf("/status wifi: mode %s, state %s (%s)", st.Wifi.Mode, st.Wifi.State, st.Wifi.Error)
	}
}
