package board

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// BootConfig is what the Pi firmware takes from config.txt to start the kernel: the
// subset skyfleet qemu needs to stand in for the firmware.
type BootConfig struct {
	Kernel    string // kernel= (default "kernel8.img" on 64-bit)
	Initramfs string // first word of the "initramfs FILE [followkernel]" line
	OSPrefix  string // os_prefix=, e.g. "a/"; prepended to every OS file name
}

// ParseConfigTXT reads config.txt as the firmware would for a board of the given
// filter name ("pi3", "pi4", ...), in a tryboot or a normal boot. Sections apply per the
// Raspberry Pi documentation §config.txt conditional filters: [all] always, [piN] for the
// model, [tryboot] only when tryboot is set, [none] never; unknown filters are skipped.
// Later lines override earlier ones. Lines without '=' other than "initramfs" are ignored,
// as the firmware does; a file naming no kernel gets the 64-bit default.
func ParseConfigTXT(data []byte, model string, tryboot bool) (BootConfig, error) {
	cfg := BootConfig{Kernel: "kernel8.img"}
	active := true
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return cfg, fmt.Errorf("config.txt:%d: unterminated section %q", n, line)
			}
			switch f := line[1 : len(line)-1]; f {
			case "all":
				active = true
			case "tryboot":
				active = tryboot
			default:
				active = f == model
			}
			continue
		}
		if !active {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "initramfs "); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				cfg.Initramfs = f[0]
			}
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "kernel":
			cfg.Kernel = strings.TrimSpace(val)
		case "os_prefix":
			cfg.OSPrefix = strings.TrimSpace(val)
		}
	}
	return cfg, sc.Err()
}
