// Package power shuts a Skyfleet device down cleanly: it stops the
// supervised services, disarms the watchdog (for poweroff), syncs and
// unmounts /perm and /boot, and then asks the kernel to power off or
// reboot. PID 1 must do this itself: when PID 1 exits, the kernel panics.
//
// Signals to PID 1 (HandleSignals), chosen to match what the usual tools
// send to an init and the brief for skyfleetd:
//
//	SIGTERM, SIGUSR2  poweroff (SIGUSR2 is what busybox "poweroff" sends)
//	SIGINT            reboot   (the kernel sends SIGINT to PID 1 on
//	                            ctrl-alt-del once CAD is switched off,
//	                            which HandleSignals does when it is PID 1)
//	SIGUSR1           reboot   (for operators: "kill -USR1 1")
package power
