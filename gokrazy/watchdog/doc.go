// Package watchdog drives the hardware watchdog (/dev/watchdog, the
// BCM2835 PM watchdog on a Pi) from PID 1.
//
// Once opened, the hardware reboots the board unless it is petted within
// its timeout. Watchdog pets it at an interval only while a health check
// passes, so a hung PID 1 (no petting at all) and an unhealthy system
// (failing check) both end in a hardware reset, which A/B updates rely on
// to fall back to the old slot. A board without a watchdog is not an
// error: the watchdog is just reported as disabled.
package watchdog
