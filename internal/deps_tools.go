//go:build tools

package tools

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/decred/dcrd/dcrec/secp256k1/v4"
	_ "github.com/diskfs/go-diskfs"
	_ "github.com/gokrazy/firmware"
	_ "github.com/gokrazy/kernel.rpi"
	_ "github.com/u-root/u-root/pkg/cpio"
	_ "github.com/u-root/u-root/pkg/kmodule"
	_ "github.com/u-root/u-root/pkg/dt"
	_ "github.com/u-root/mkuimage/uimage"
)
