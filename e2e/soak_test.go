//go:build e2e

package e2e

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// soakCount is the number of trials a soak-sized test runs: the environment
// variable env when set (make soak sets the long run's), def otherwise (CI's).
func soakCount(t *testing.T, env string, def int) int {
	t.Helper()
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	k, err := strconv.Atoi(s)
	if err != nil || k < 0 {
		t.Fatalf("%s=%q: want a number of trials", env, s)
	}
	return k
}

// soakRand is the random source of a soak's instants, seeded from the
// environment variable env when set (to repeat a logged run) or from the clock;
// it returns the seed for the log.
func soakRand(t *testing.T, env string) (*rand.Rand, uint64) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(env); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a number", env, s)
		}
		seed = v
	}
	return rand.New(rand.NewPCG(seed, seed>>1|1)), seed
}
