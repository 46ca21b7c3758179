//go:build tools

package gomod

// These imports keep the boot payload modules in go.mod and go.sum: nothing compiles
// them, `go mod download` fetches their files (kernel, DTBs, overlays, modules and the
// Pi firmware) for the image build.
import (
	_ "github.com/gokrazy/firmware"
	_ "github.com/gokrazy/kernel.rpi"
)
