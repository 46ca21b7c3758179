package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/gokrazy"
	"github.com/skyfleet/skyfleet/gokrazy/cmdline"
	"github.com/skyfleet/skyfleet/gokrazy/growperm"
	"github.com/skyfleet/skyfleet/gokrazy/kmod"
	"github.com/skyfleet/skyfleet/gokrazy/mounts"
	"github.com/skyfleet/skyfleet/gokrazy/netconf"
	"github.com/skyfleet/skyfleet/gokrazy/power"
	"github.com/skyfleet/skyfleet/gokrazy/reaper"
	"github.com/skyfleet/skyfleet/gokrazy/supervise"
	"github.com/skyfleet/skyfleet/gokrazy/watchdog"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/internal/sandbox"
	"github.com/skyfleet/skyfleet/internal/unixsock"
	"github.com/skyfleet/skyfleet/services/identity"
)

// console is where PID 1 talks to the operator: the kernel's /dev/console, which the
// kernel opened as our stdout.
var console io.Writer = os.Stdout

func logf(format string, args ...any) {
	fmt.Fprintf(console, "skyfleet: "+format+"\n", args...)
}

// runInit is PID 1. Each step that can fail degrades the node instead of stopping it:
// a node that boots without its perm partition, its config or its network is still
// reachable and says what is wrong on its status page. Only a failure to start the
// supervisor itself leaves nothing to do but reboot.
func runInit() {
	st := &nodeState{Version: version, ConfigErrors: []fleetconf.Problem{}, Degraded: []string{}}
	if err := mounts.MountEarly(); err != nil {
		st.degrade("mount", err)
	}
	args := kernelArgs()
	st.Board, st.Slot = args["skyfleet.board"], args["skyfleet.slot"]
	logf("Skyfleet %s on %s, slot %s, kernel time %.2fs", version, st.Board, st.Slot, kernelUptime().Seconds())

	// Start the reaper first: from here on every child, ours or orphaned, is waited for.
	rp := reaper.New(reaper.Options{})
	go rp.Run(context.Background())

	// The board's modules are Wi-Fi drivers: nothing at boot waits for them.
	if p, err := board.Get(st.Board); err == nil {
		go func() {
			if err := kmod.LoadModules(p.Modules); err != nil {
				logf("modules: %v", err)
			}
		}()
	}

	cfg := fleetconf.Defaults(true)
	bootMounted := false
	disk, err := mounts.FindDisk(mounts.FindOptions{})
	if err != nil {
		st.degrade("disk", err)
	} else {
		// A power cut while an update had /boot writable: repair before mounting.
		rep, err := checkBoot(disk.Boot)
		if rep != "" {
			logf("boot partition was not cleanly unmounted: %s", rep)
			st.BootRepair = rep
		}
		if err != nil {
			st.degrade("boot check", err)
		}
		if err := mounts.MountBoot(disk.Boot, "/boot"); err != nil {
			st.degrade("boot", err)
		} else {
			bootMounted = true
			cfg = loadConfig(st, "/boot/fleet.toml")
		}
		st.Perm = mountPerm(disk)
		if st.Perm.Error != "" {
			st.degrade("perm", errors.New(st.Perm.Error))
		}
	}

	waitEntropy()
	key, dataDir := loadIdentity(st)
	st.Address, st.PublicKey = key.Address().String(), key.PublicKeyHex()
	st.Hostname = hostname(cfg)
	if err := os.WriteFile("/proc/sys/kernel/hostname", []byte(st.Hostname), 0o644); err != nil {
		logf("hostname: %v", err)
	}
	logf("node address %s (public key %s)", st.Address, st.PublicKey)

	nw, err := netconf.Start(context.Background(), netConfig(cfg, st.Hostname))
	if err != nil {
		st.degrade("network", err)
	}

	sup, err := supervise.New(supervise.Options{Reaper: rp, Console: console})
	if err != nil {
		// Without a supervisor the node can run nothing: reboot and hope the next boot
		// (or the other slot) does better.
		logf("supervisor: %v; rebooting in 10s", err)
		time.Sleep(10 * time.Second)
		(&power.Power{Console: console}).Reboot()
	}
	pw := &power.Power{Services: sup, Console: console}
	// skyfleet qemu sets skyfleet.watchdog=off: QEMU's BCM2835 power-management model
	// resets the machine the moment the watchdog is armed instead of counting down.
	if cfg.System.Watchdog && args["skyfleet.watchdog"] != "off" {
		wd, err := watchdog.Start(context.Background(), watchdog.Config{Health: func() error { return health(sup) }})
		if err != nil {
			logf("watchdog: %v", err)
		} else {
			pw.Watchdog, st.watchdog = wd, wd.Status
		}
	}
	go pw.HandleSignals(context.Background())
	st.mesh = meshStatus(meshSocket)
	if bootMounted {
		st.updater = newUpdater(st, cfg, "/boot", dataDir, pw)
	}
	if err := serveSocket(st, sup, nw, pw); err != nil {
		st.degrade("api", err)
	}
	services := []supervise.Service{
		{Name: "status", Args: statusArgs(cfg, st.PublicKey, dataDir)},
		// The mesh router: its own process, so a crash restarts it without the node.
		{Name: "mesh", Args: []string{"/init", "mesh", "--config", "/boot/fleet.toml", "--data", dataDir}},
		// The Wi-Fi radio: its own process, as it parses what anyone in range sends.
		{Name: "wifi", Args: []string{"/init", "wifi", "--config", "/boot/fleet.toml"}},
	}
	// A wallet node (docs/architecture.md §Wallet): the wallet's own
	// process and uid, the card out of reach, and every other service
	// without the capabilities that get past file permissions.
	hasWallet := walletNode(cfg, walletDir)
	if hasWallet {
		if err := prepareWallet(st.Perm.Mounted); err != nil {
			st.degrade("wallet", err)
		}
		if cfg.Wallet.Enabled {
			services = append(services, walletService(cfg))
		} else {
			st.degrade("wallet", errors.New("/perm/wallet holds a seed but [wallet] enabled is not true: the wallet is not started, and the node stays closed as a wallet node"))
		}
	}
	if wantUI(cfg, func() bool {
		_, fb := os.Stat("/dev/fb0")
		_, card := os.Stat("/dev/dri/card0")
		return fb == nil || card == nil
	}) {
		// The touchscreen: its own process, as it runs drivers and draws.
		services = append(services, supervise.Service{Name: "ui", Args: []string{"/init", "ui", "--config", "/boot/fleet.toml", "--data", dataDir}})
	}
	if hasWallet {
		for i := range services {
			if services[i].Name != "wallet" {
				services[i].Env = append(os.Environ(), sandbox.DropEnv+"=1")
			}
		}
	}
	shellTTY := consoleTTY()
	if hasWallet && shellTTY != "" {
		// The serial header would give a root shell, with every
		// capability, to anyone holding the kit.
		logf("console shell off: this node holds a wallet")
		shellTTY = ""
	}
	if _, err := os.Stat(shell); err == nil && shellTTY != "" {
		// The operator's shell owns the console; it restarts like a getty when it exits.
		services = append(services, supervise.Service{Name: "shell", Args: []string{shell}, TTY: shellTTY,
			Env: []string{"PATH=/bbin:/bin", "HOME=/tmp", "TERM=vt100"}})
	}
	for _, svc := range services {
		if err := sup.Start(svc); err != nil {
			st.degrade("service "+svc.Name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	ready := injectFault(sup.WaitReady(ctx))
	if ready != nil {
		st.degrade("services", ready)
	}
	cancel()
	if st.updater != nil {
		// A trial boot commits or goes back now (services/update).
		// It also needs the master's link, unless fleet.toml failed
		// closed: then no slot links with anyone, and the check would only
		// keep the node from taking the update that fixes it.
		master := cfg.Master.PublicKey
		if st.LinksRefused != "" {
			master = ""
		}
		afterBoot(st.updater, ready, master)
	}
	st.mu.Lock()
	st.BootMS = kernelUptime().Milliseconds()
	st.mu.Unlock()
	logf("ready in %d ms (kernel clock): address %s, status on %s", st.BootMS, st.Address, cfg.Node.Status)
	if len(st.Degraded) > 0 {
		logf("DEGRADED: %s", strings.Join(st.Degraded, "; "))
	}

	if shellTTY == "" {
		consoleCommands(os.Stdin, st, pw)
	}
	select {} // PID 1 never returns; pw ends the system
}

// loadConfig reads fleet.toml into st's config_errors, logs each problem and, when
// the file fails closed, says on the status page that the mesh links with nobody
// (the mesh service reads the same file and refuses every link). The Config is the
// device defaults plus what the file validly sets: enough for PID 1 to bring the
// network up and serve status whatever the file holds.
func loadConfig(st *nodeState, path string) fleetconf.Config {
	cfg, problems := fleetconf.Load(path, true)
	st.ConfigErrors = append(st.ConfigErrors, problems...)
	for _, p := range problems {
		logf("fleet.toml: %s", p)
	}
	if fleetconf.FailClosed(problems) {
		st.LinksRefused = "fleet.toml has errors that would leave this node open (see config_errors): the mesh links with nobody until they are fixed and the node reboots"
		logf("REFUSING every mesh link: %s", st.LinksRefused)
	}
	return cfg
}

// mountPerm mounts /perm and, on the first boot of a card bigger than the image, grows
// partition and filesystem to fill it. A failure to grow leaves a smaller but working
// /perm; a failure to mount leaves none, and the caller degrades.
func mountPerm(disk mounts.Disk) permState {
	ps := permState{Device: disk.Perm}
	grewTable, err := growperm.GrowPartition(disk.Dev, 2)
	if err != nil {
		logf("perm: growing the partition: %v", err)
	}
	if err := mounts.MountPerm(disk.Perm, "/perm"); err != nil {
		ps.Error = err.Error()
		return ps
	}
	ps.Mounted = true
	grewFS, err := growperm.GrowFilesystem(disk.Perm, "/perm")
	if err != nil {
		logf("perm: growing the filesystem: %v", err)
	}
	ps.Grown = grewTable || grewFS
	if ps.Grown {
		logf("perm: grown to fill the card")
	}
	return ps
}

// netConfig turns fleet.toml's [network] into interface plans: the static address (if
// any) on the first interface, DHCP on the others.
func netConfig(cfg fleetconf.Config, host string) netconf.Config {
	nc := netconf.Config{Hostname: host, Logf: logf}
	for i, name := range cfg.Network.Interfaces {
		if name == "wlan0" && cfg.Wifi.EffectiveMode() != "station" {
			// As an access point or in the peering cell the Wi-Fi service
			// gives wlan0 its address; there is no DHCP server to ask.
			continue
		}
		ifc := netconf.Interface{Name: name}
		if i == 0 && cfg.Network.Address != "" {
			ifc.Address, _ = netip.ParsePrefix(cfg.Network.Address)
			ifc.Gateway, _ = netip.ParseAddr(cfg.Network.Gateway)
			for _, d := range cfg.Network.DNS {
				if a, err := netip.ParseAddr(d); err == nil {
					ifc.DNS = append(ifc.DNS, a)
				}
			}
		}
		nc.Interfaces = append(nc.Interfaces, ifc)
	}
	return nc
}

// tmpData is the data directory when /perm is unusable: on the initramfs (RAM), so
// the services still share one key, which is lost at power-off.
const tmpData = "/run/skyfleet/data"

// loadIdentity loads or creates the node key on /perm and returns it with the data
// directory holding it. Without /perm the node runs on a key that lives only in RAM,
// and says so: its address will change on the next boot.
func loadIdentity(st *nodeState) (*identity.Key, string) {
	if st.Perm.Mounted {
		k, created, err := identity.LoadOrCreate("/perm", rand.Reader)
		if err == nil {
			if created {
				logf("first boot: created node key on /perm")
			}
			return k, "/perm"
		}
		st.degrade("identity", err)
	}
	if err := os.MkdirAll(tmpData, 0o700); err != nil {
		panic(err) // the initramfs is RAM: this cannot fail short of a broken image
	}
	k, _, err := identity.LoadOrCreate(tmpData, rand.Reader)
	if err != nil {
		// crypto/rand does not fail on Linux ≥ 3.17; nothing sensible is left to do.
		panic(err)
	}
	st.degrade("identity", fmt.Errorf("using a temporary key: the address changes on every boot until /perm works"))
	return k, tmpData
}

// waitEntropy says on the console when the kernel's random number generator is not
// ready yet, since key generation then blocks in getrandom(2) and the boot seems hung;
// the Pi firmware's /chosen/rng-seed normally makes this instant.
func waitEntropy() {
	var b [1]byte
	if _, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK); err != unix.EAGAIN {
		return
	}
	start := kernelUptime()
	logf("waiting for the kernel's random number generator to initialise")
	unix.Getrandom(b[:], 0)
	logf("random number generator ready after %.1fs", (kernelUptime() - start).Seconds())
}

// health is what the watchdog is fed on: PID 1 is alive and no service is stuck
// crash-looping.
func health(sup *supervise.Supervisor) error {
	for _, s := range sup.Status() {
		if s.State == supervise.Backoff && s.BackoffMS >= 30_000 {
			return fmt.Errorf("service %s is crash-looping: %s", s.Name, s.LastExit)
		}
	}
	return nil
}

// serveSocket serves PID 1's API on its Unix socket.
func serveSocket(st *nodeState, sup *supervise.Supervisor, nw *netconf.Net, pw *power.Power) error {
	if err := os.MkdirAll("/run/skyfleet", 0o755); err != nil {
		return err
	}
	// Root only: the API can power the node off (the ui service, root
	// with dropped capabilities, still owns what it connects to).
	ln, err := unixsock.Listen(initSocket, 0o600)
	if err != nil {
		return err
	}
	live := func() (any, any) {
		var n any = []netconf.IfaceState{}
		if nw != nil {
			n = nw.State()
		}
		return sup.Status(), n
	}
	logs := func(name string) ([]byte, bool) {
		for _, s := range sup.Status() {
			if s.Name == name {
				return sup.Logs(name), true
			}
		}
		return nil, false
	}
	go http.Serve(ln, st.handler(live, logs, pw))
	return nil
}

// consoleCommands reads the console when the image has no shell: "poweroff", "reboot"
// and "status" are understood, so an operator with only a serial cable (or a test
// harness) can still stop the node cleanly.
func consoleCommands(r io.Reader, st *nodeState, pw *power.Power) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case "":
		case "poweroff":
			pw.Poweroff()
		case "reboot":
			pw.Reboot()
		case "status":
			st.mu.Lock()
			logf("address %s, slot %s, degraded %v, config errors %d", st.Address, st.Slot, st.Degraded, len(st.ConfigErrors))
			st.mu.Unlock()
		default:
			logf("console commands: status, poweroff, reboot")
		}
	}
}

// shell is u-root's shell from /bbin, started on the console.
const shell = "/bbin/gosh"

// consoleTTY returns the device behind /dev/console (the last console= of the kernel
// command line, e.g. /dev/ttyAMA0). /dev/console itself cannot be a controlling
// terminal, so a shell started on it would get no job control and no Ctrl-C.
func consoleTTY() string {
	b, err := os.ReadFile("/sys/class/tty/console/active")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	// The file lists consoles with the preferred one (/dev/console) last.
	return "/dev/" + f[len(f)-1]
}

// kernelArgs returns the name=value parameters of /proc/cmdline, split the way
// the kernel splits them (quotes group, the last of a repeated name wins). An
// unreadable or oversized file gives an empty map: the node boots with defaults.
func kernelArgs() map[string]string {
	ps, _ := cmdline.ReadFile("/proc/cmdline")
	return ps.Map()
}

func kernelUptime() time.Duration { return gokrazy.KernelUptime() }

// hostname picks the node's host name: [system] hostname, else [node] name if it is a
// valid host name label (RFC 1123 §2.1: letters, digits and inner hyphens, at most 63),
// else "skyfleet". The name is free text; a label with spaces would confuse DHCP servers.
func hostname(cfg fleetconf.Config) string {
	for _, h := range []string{cfg.System.Hostname, cfg.Node.Name} {
		if validLabel(h) {
			return h
		}
	}
	return "skyfleet"
}

func validLabel(h string) bool {
	if h == "" || len(h) > 63 || h[0] == '-' || h[len(h)-1] == '-' {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
