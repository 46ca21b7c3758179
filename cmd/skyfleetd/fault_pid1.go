//go:build fault_pid1

package main

// A test build: see testFault.
func init() { testFault = "pid1" }
