// Command skyfleetd is the device's one binary. Started by the kernel as /init it is
// PID 1: it mounts, loads modules, reads fleet.toml, creates the node identity and
// supervises every service as a child process of itself. Started with a subcommand it
// is that service or tool:
//
//	skyfleetd status [--listen ADDR]  serve the status API (the operator's window)
//	skyfleetd mesh                    the mesh router
//	skyfleetd wifi                    the Wi-Fi service ([wifi] in fleet.toml)
//	skyfleetd ui                      the touchscreen ([display] in fleet.toml)
//	skyfleetd wallet                  the hardware wallet ([wallet]; its own uid)
//	skyfleetd poweroff | reboot       ask PID 1 to stop cleanly
//	skyfleetd version                 print the version
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/skyfleet/skyfleet/internal/sandbox"
)

// version is stamped by the image build with -ldflags "-X main.version=...".
var version = "dev"

// initSocket is PID 1's HTTP/JSON API for the other processes of the node.
const initSocket = "/run/skyfleet/init.sock"

func main() {
	if os.Getpid() == 1 {
		runInit()
		return // not reached: runInit powers off or reboots
	}
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "skyfleetd" || name == "init" {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "usage: skyfleetd status|mesh|wifi|ui|wallet|poweroff|reboot|version")
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	// On a wallet node PID 1 asks each service to drop the capabilities
	// that get past file permissions, before it reads any outside input.
	if _, err := sandbox.DropFromEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "skyfleetd %s: %v\n", name, err)
		os.Exit(1)
	}
	var err error
	switch name {
	case "status":
		err = runStatus(args)
	case "mesh":
		err = runMesh(args)
	case "wifi":
		err = runWifi(args)
	case "ui":
		err = runUI(args)
	case "wallet":
		err = runWallet(args)
	case "poweroff", "reboot":
		err = askInit(name)
	case "version":
		fmt.Println(version)
	default:
		err = fmt.Errorf("unknown command %q (status, mesh, wifi, ui, wallet, poweroff, reboot, version)", name)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "skyfleetd %s: %v\n", name, err)
		os.Exit(1)
	}
}
