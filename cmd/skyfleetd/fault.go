package main

import (
	"errors"
	"os"
)

// testFault names a failure compiled into a test build of skyfleetd, so that the
// e2e tests can push a release that fails the way real ones do and watch the
// node roll back (issue 11, acceptance 3). It is set only by a file built with
// one of the tags below (GOFLAGS=-tags=fault_health when `skyfleet update build`
// compiles skyfleetd); a release build has none, and the code below is then
// unreachable. Such a bundle still needs a release key's signature to be taken.
//
//	fault_health  the health check fails: a service that never becomes ready
//	fault_pid1    PID 1 exits once its services are up (the kernel panics with
//	              "Attempted to kill init")
//	fault_panic   the kernel panics (sysrq "c")
var testFault string

// injectFault applies testFault once the services had their time to come up,
// before the boot is judged: it returns the readiness the health check sees.
func injectFault(ready error) error {
	switch testFault {
	case "health":
		return errors.Join(ready, errors.New("this test build (fault_health) fails its health check"))
	case "pid1":
		logf("this test build (fault_pid1) ends PID 1")
		os.Exit(3)
	case "panic":
		logf("this test build (fault_panic) panics the kernel")
		if err := os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0o200); err != nil {
			logf("sysrq: %v", err)
		}
	}
	return ready
}
