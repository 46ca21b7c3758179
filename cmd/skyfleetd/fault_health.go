//go:build fault_health

package main

// A test build: see testFault.
func init() { testFault = "health" }
