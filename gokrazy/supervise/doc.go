// Package supervise keeps skyfleetd's services running as child
// processes of PID 1.
//
// Every service is a program (normally skyfleetd itself, re-executed with
// a subcommand) that the Supervisor starts, watches and restarts when it
// exits, waiting an exponentially growing delay between restarts so a
// crash-looping service cannot eat the CPU, and resetting the delay once a
// run has been stable for a while. Each service's combined stdout and
// stderr go into a fixed-size ring buffer that keeps the tail (what an
// operator wants after a crash) and can be teed line by line to the
// console. Status gives a JSON-ready snapshot for the status page; Stop
// terminates everything for poweroff.
//
// Waiting for children is delegated to a reaper.Reaper, because PID 1
// must also reap orphans and only one waiter per process can work; see
// package reaper.
package supervise
