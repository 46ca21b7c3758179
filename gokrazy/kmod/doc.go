// Package kmod loads kernel modules by name for PID 1.
//
// Most drivers Skyfleet needs are built into the Pi kernel; the rest
// (Wi-Fi: brcmutil, brcmfmac; Bluetooth) ship as modules in the
// initramfs under /lib/modules/$(uname -r). Load resolves names through
// modules.dep (and modules.builtin) with u-root's kmodule package, loads
// dependencies first, and keeps going past failures so one missing module
// does not keep the others from loading.
package kmod
