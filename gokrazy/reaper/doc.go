// Package reaper is the single place in skyfleetd (PID 1) that waits for
// child processes.
//
// PID 1 inherits every orphaned process on the system; if nobody calls
// wait for them they stay zombies forever and fill the process table.
// The obvious fix, a loop calling wait4(-1), races with os/exec: whichever
// waiter runs first collects the exit status, so exec.Cmd.Wait of a
// supervised service could fail with ECHILD and lose the exit code, or the
// reaper could miss orphans while Cmd.Wait blocks.
//
// Design: one waiter, many listeners. A Reaper runs the only wait4(-1)
// loop in the process (woken by SIGCHLD). Code that starts a child does it
// through Reaper.Start, which forks the child while holding the registry
// lock and records its PID before the lock is released; the loop looks the
// reaped PID up under the same lock, so an exit can never be dispatched
// before its PID is registered, even for a child that dies instantly.
// A registered PID gets its Exit on a channel; any other PID is an orphan
// that was re-parented to us, and is merely counted (and optionally
// reported to a callback).
//
// The price: nothing else in the process may call exec.Cmd.Wait,
// exec.Cmd.Run, exec.Cmd.Output or os.Process.Wait while a Reaper runs,
// because the loop may collect that child first (Wait then fails with
// ECHILD). Everything in PID 1 that runs a program goes through Reaper.Start
// (or the supervise package, which uses it). Children that Go creates
// internally without SIGCHLD as exit signal (the runtime's CLONE_PIDFD
// probe) are not visible to wait4 without __WALL and are left alone.
package reaper
