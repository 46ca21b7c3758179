//go:build fault_panic

package main

// A test build: see testFault.
func init() { testFault = "panic" }
