// Package gokrazy is Skyfleet's appliance runtime, in the spirit of the
// gokrazy project: skyfleetd runs as /init (PID 1) from the initramfs and
// is itself the whole init system, built from small subpackages that the
// skyfleetd command wires together:
//
//	cmdline    split /proc/cmdline as the kernel does
//	mounts     /proc, /sys, /dev, /run, /tmp; find the SD card; mount /boot and /perm
//	growperm   grow /perm to fill the card on first boot
//	kmod       load kernel modules (Wi-Fi, Bluetooth) via modules.dep
//	netconf    bring up lo and eth0/usb0/wlan0 with DHCPv4 or static addresses
//	reaper     the one wait4 loop of PID 1: reaps orphans, reports exits
//	supervise  run services as child processes, restart with backoff, ring-buffer logs
//	watchdog   pet /dev/watchdog while the system is healthy
//	power      clean poweroff / reboot, and the signals that trigger them
//
// This package itself only holds the boot clock (KernelUptime), used to
// report boot_ms: the time from kernel start until all services are
// ready.
package gokrazy
