package initramfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/u-root/gobusybox/src/pkg/bb"
	"github.com/u-root/gobusybox/src/pkg/golang"
	"github.com/u-root/uio/llog"
)

// Commands are the u-root core commands built into /bbin/bb for the operator's shell:
// gosh is the shell, the rest are the everyday tools. poweroff and shutdown are left out
// on purpose: they call reboot(2) directly, without stopping services and unmounting
// /perm; /bbin/poweroff and /bbin/reboot are skyfleetd, which asks PID 1 to do it right.
// bbin_tools.go must import exactly these (a test checks), so go.mod carries them.
var Commands = strings.Fields(`gosh ls cat cp mv rm mkdir ln chmod dmesg mount umount ps kill
	ip ping df free uptime uname hostname date grep find head tail wc hexdump md5sum shasum
	sync sleep echo true false pwd printenv lsmod insmod rmmod netstat wget tar gzip dd more
	strings tee which xargs stty tty sort uniq readlink realpath du blkid touch truncate
	timeout seq id netcat dhclient`)

// buildTags select gosh's plain line reader: its default editor (bubbline) queries the
// terminal for colours and the cursor position, and a serial console that never answers
// leaves it waiting forever.
var buildTags = []string{"goshsmall"}

// Busybox returns u-root's Commands compiled into one busybox-style binary for
// linux/goarch, built with gobusybox from the module cache (go.mod pins u-root). The
// build takes about a minute and gobusybox always rebuilds everything, so the result is
// cached in cacheDir under a hash of its inputs (go.sum, the command list, GOARCH and
// the Go version); a cache hit costs one file read.
func Busybox(root, goarch, cacheDir string) ([]byte, error) {
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return nil, fmt.Errorf("busybox: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", runtime.Version(), goarch, strings.Join(Commands, " "), strings.Join(buildTags, " "))
	h.Write(sum)
	cached := filepath.Join(cacheDir, "bb-"+goarch+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	if data, err := os.ReadFile(cached); err == nil {
		return data, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("busybox: cache: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, "build-")
	if err != nil {
		return nil, fmt.Errorf("busybox: %w", err)
	}
	defer os.RemoveAll(tmp)
	paths := make([]string, len(Commands))
	for i, c := range Commands {
		paths[i] = "github.com/u-root/u-root/cmds/core/" + c
	}
	env := golang.Default(golang.DisableCGO(), golang.WithGOARCH(goarch), golang.WithWorkingDir(root), golang.WithBuildTag(buildTags...))
	var log strings.Builder
	l := llog.New(slog.LevelWarn, func(format string, v ...any) { fmt.Fprintf(&log, format+"\n", v...) })
	out := filepath.Join(tmp, "bb")
	if err := bb.BuildBusybox(l.AtLevel(slog.LevelInfo), &bb.Opts{Env: env, GenSrcDir: filepath.Join(tmp, "src"), CommandPaths: paths, BinaryPath: out}); err != nil {
		return nil, fmt.Errorf("busybox: %w\n%s", err, log.String())
	}
	if err := os.Rename(out, cached); err != nil {
		return nil, fmt.Errorf("busybox: cache: %w", err)
	}
	return os.ReadFile(cached)
}

// BusyboxLinks returns the /bbin symlinks for Commands (each -> "bb") plus
// /bbin/poweroff and /bbin/reboot -> /init, so the operator's shell stops the node
// cleanly through PID 1.
func BusyboxLinks() map[string]string {
	m := map[string]string{"/bbin/poweroff": "/init", "/bbin/reboot": "/init", "/bin/sh": "/bbin/gosh"}
	for _, c := range Commands {
		m["/bbin/"+c] = "bb"
	}
	return m
}
