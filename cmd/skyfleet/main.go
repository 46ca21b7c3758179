// Command skyfleet is Skyfleet's host tool: it builds SD-card images, boots them in
// QEMU and inspects keys. Run `skyfleet help` for the commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// stdout is where commands print their results; tests swap it.
var stdout io.Writer = os.Stdout

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand: its one-line summary and its entry point, which parses
// its own flags from args.
type command struct {
	summary string
	run     func(args []string) error
}

// commands is filled in init: the commands' --help reads it, which a package-level
// initialiser would make an initialisation cycle.
var commands map[string]command

func init() {
	commands = map[string]command{
		"image":   {"build an SD-card image for a board", cmdImage},
		"qemu":    {"boot an rpi3b image in QEMU the way the Pi firmware would", cmdQEMU},
		"key":     {"inspect node keys (key inspect --secret-file FILE)", cmdKey},
		"keygen":  {"make a key file, e.g. the fleet master's (keygen -o master.key)", cmdKeygen},
		"node":    {"run a mesh node on this host from a fleet.toml", cmdNode},
		"mesh":    {"ask a running node: mesh ping|route|links", cmdMesh},
		"msg":     {"send and read text messages: msg send|inbox|outbox", cmdMsg},
		"saf":     {"carry bundles on a USB stick: saf export|import|stats", cmdSAF},
		"master":  {"run the fleet master: registry, dashboard, remote shells", cmdMaster},
		"nodes":   {"list the fleet's nodes from the master", cmdNodes},
		"ssh":     {"open a shell on a node through the master", cmdSSH},
		"exec":    {"run one command on a node: exec NODE -- CMD", cmdExec},
		"cp":      {"copy a file to or from a node: cp SRC NODE:/path", cmdCp},
		"update":  {"build, check, push and roll out signed update bundles: update build|verify|push|fleet", cmdUpdate},
		"radio":   {"AFSK 1200 audio files: radio encode (TNC2 lines to WAV), radio decode (WAV to TNC2 lines)", cmdRadio},
		"wallet":  {"the node's hardware wallet: pair, setup, sign-psbt, sign-skycoin, sign-message...; wallet derive checks a backup on this host", cmdWallet},
		"version": {"print the version", func([]string) error { fmt.Println(version); return nil }},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, `skyfleet %s: build, boot and manage Skyfleet nodes.

Usage: skyfleet <command> [flags]

Commands:
`, version)
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(os.Stderr, `
Run 'skyfleet <command> --help' for a command's flags.

Quick start:
  skyfleet image --board rpi3b -o skyfleet.img     # build a card image
  skyfleet qemu --image skyfleet.img                # boot it, console on this terminal
  curl 127.0.0.1:8080/status                        # the node's status page

Fleet control:
  skyfleet keygen -o master.key                     # put its public key in fleet.toml [master]
  skyfleet master --key master.key --config fleet.toml
  skyfleet nodes                                    # every node that reported
  skyfleet exec NODE -- uname -a                    # or: skyfleet ssh NODE
`)
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "skyfleet: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := c.run(os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "skyfleet %s: %v\n", os.Args[1], err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		os.Exit(1)
	}
}

// exitError carries a specific exit status (e.g. 3 for a QEMU timeout).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// newFlags makes a FlagSet whose --help prints the summary, the usage line and an
// example before the flags.
func newFlags(name, usageLine, example string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nUsage: skyfleet %s\n\nFlags:\n", commands[strings.Fields(name)[0]].summary, usageLine)
		fs.PrintDefaults()
		if example != "" {
			fmt.Fprintf(fs.Output(), "\nExample:\n  %s\n", example)
		}
	}
	return fs
}
