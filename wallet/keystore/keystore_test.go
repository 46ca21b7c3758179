package keystore

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// fast are argon2id costs small enough for tests; the real ones are
// measured in the README.
var fast = Params{Time: 1, Memory: 64, Threads: 1}

var entropy = bytes.Repeat([]byte{0x7f}, 16)

func newStore(t *testing.T) (*Store, *time.Time) {
	t.Helper()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	s := &Store{Dir: filepath.Join(t.TempDir(), "wallet"), Params: fast, Now: func() time.Time { return now }}
	if err := s.Create(entropy, "482916"); err != nil {
		t.Fatal(err)
	}
	return s, &now
}

func TestCreateAndUnlock(t *testing.T) {
	s, _ := newStore(t)
	got, err := s.Unlock("482916")
	if err != nil || !bytes.Equal(got, entropy) {
		t.Fatalf("Unlock: %x, %v", got, err)
	}
	if err := s.Create(entropy, "482916"); !errors.Is(err, ErrExists) {
		t.Errorf("a second Create: %v", err)
	}
	fi, err := os.Stat(s.Dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the directory is %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	for _, name := range []string{SeedFile, AttemptsFile} {
		if fi, err := os.Stat(filepath.Join(s.Dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v (%v), want 0600", name, fi.Mode().Perm(), err)
		}
	}
	// The file holds no trace of the entropy or the PIN.
	b, _ := os.ReadFile(filepath.Join(s.Dir, SeedFile))
	if bytes.Contains(b, entropy[:8]) || bytes.Contains(b, []byte("482916")) {
		t.Error("the seed file shows the entropy or the PIN")
	}
	for _, pin := range []string{"123", "1234567890123", "12a456", ""} {
		if _, err := s.Unlock(pin); !errors.Is(err, ErrPINFormat) {
			t.Errorf("PIN %q: %v", pin, err)
		}
	}
	if s.Attempts() != 0 {
		t.Errorf("malformed PINs were counted: %d", s.Attempts())
	}
}

// Wrong PINs count, the delay after each grows, an attempt inside the delay
// is refused without being counted, the right PIN clears the count, and
// the tenth wrong PIN in a row erases the seed.
func TestWrongPINsWipe(t *testing.T) {
	s, now := newStore(t)
	var waits []time.Duration
	for i := 1; i < DefaultMaxAttempts; i++ {
		_, err := s.Unlock("000000")
		var w *WrongPIN
		if !errors.As(err, &w) || w.Left != DefaultMaxAttempts-i || s.Attempts() != i {
			t.Fatalf("wrong PIN %d: %v, counter %d", i, err, s.Attempts())
		}
		waits = append(waits, w.Wait)
		if w.Wait > 0 {
			var soon *TooSoon
			if _, err := s.Unlock("000000"); !errors.As(err, &soon) || s.Attempts() != i {
				t.Fatalf("an attempt inside the delay: %v, counter %d", err, s.Attempts())
			}
		}
		*now = now.Add(w.Wait)
	}
	if waits[0] != 0 || waits[2] != time.Second || waits[3] != 2*time.Second || waits[8] != 64*time.Second {
		t.Errorf("delays %v", waits)
	}
	// A second name for the seed file's inode shows what the wipe left
	// in its blocks.
	ghost := filepath.Join(t.TempDir(), "ghost")
	if err := os.Link(filepath.Join(s.Dir, SeedFile), ghost); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unlock("000000"); !errors.Is(err, ErrWiped) {
		t.Fatalf("the tenth wrong PIN: %v", err)
	}
	if s.Exists() {
		t.Fatal("the seed file is still there")
	}
	if b, err := os.ReadFile(ghost); err != nil || len(b) == 0 || len(bytes.Trim(b, "\x00")) != 0 {
		t.Errorf("the wiped seed file's bytes were not overwritten with zeros (%d bytes, %v)", len(b), err)
	}
	if _, err := s.Unlock("482916"); !errors.Is(err, ErrNoSeed) {
		t.Errorf("the right PIN after the wipe: %v", err)
	}
}

func TestRightPINClearsCount(t *testing.T) {
	s, now := newStore(t)
	for range 5 {
		_, err := s.Unlock("111111")
		var w *WrongPIN
		errors.As(err, &w)
		*now = now.Add(w.Wait)
	}
	if _, err := s.Unlock("482916"); err != nil || s.Attempts() != 0 {
		t.Fatalf("the right PIN: %v, counter %d", err, s.Attempts())
	}
}

// A restart does not skip the delay: a new Store over the same directory
// waits the delay of the count on the card.
func TestDelaySurvivesRestart(t *testing.T) {
	s, now := newStore(t)
	for range 4 {
		_, err := s.Unlock("111111")
		var w *WrongPIN
		errors.As(err, &w)
		*now = now.Add(w.Wait)
	}
	again := &Store{Dir: s.Dir, Now: s.Now}
	var soon *TooSoon
	if _, err := again.Unlock("482916"); !errors.As(err, &soon) || soon.Wait != 2*time.Second {
		t.Errorf("right after a restart with 4 wrong PINs counted: %v", err)
	}
}

// Damaged files fail closed: a seed file that does not parse, or asks for
// absurd costs, is refused and left in place; a counter that does not parse
// counts as the limit.
func TestDamagedFiles(t *testing.T) {
	s, _ := newStore(t)
	path := filepath.Join(s.Dir, SeedFile)
	good, _ := os.ReadFile(path)
	for _, bad := range [][]byte{[]byte("{"), bytes.Replace(good, []byte(`"time":1`), []byte(`"time":100`), 1),
		bytes.Replace(good, []byte(`"memory_kib":64`), []byte(`"memory_kib":99999999`), 1)} {
		os.WriteFile(path, bad, 0o600)
		if _, err := s.Unlock("482916"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%.40s: %v", bad, err)
		}
		if !s.Exists() {
			t.Fatal("a damaged seed file was removed")
		}
	}
	os.WriteFile(path, good, 0o600)
	os.WriteFile(filepath.Join(s.Dir, AttemptsFile), []byte("garbage"), 0o600)
	// Exists leaves an unreadable counter to Unlock: asking must not erase.
	if !s.Exists() {
		t.Fatal("Exists erased the seed over a damaged counter")
	}
	if _, err := s.Unlock("482916"); !errors.Is(err, ErrWiped) {
		t.Errorf("a damaged counter: %v, want the wipe", err)
	}
}

// A power cut in the wipe, after the seed file was zeroed and before its
// unlink, leaves a file of zeros beside a counter at the limit. The store
// finishes the wipe when asked whether a seed exists, so a new seed can be
// made; a counter below the limit keeps the file (it fails as ErrCorrupt).
func TestCutMidWipe(t *testing.T) {
	s, _ := newStore(t)
	path := filepath.Join(s.Dir, SeedFile)
	good, _ := os.ReadFile(path)
	zeros := make([]byte, len(good))
	os.WriteFile(path, zeros, 0o600)
	os.WriteFile(filepath.Join(s.Dir, AttemptsFile), []byte("9\n"), 0o600)
	if !s.Exists() {
		t.Fatal("a damaged seed file under the limit was removed")
	}
	os.WriteFile(filepath.Join(s.Dir, AttemptsFile), []byte("10\n"), 0o600)
	after := &Store{Dir: s.Dir, Params: fast} // the process after the cut
	if after.Exists() {
		t.Fatal("the half-wiped seed still counts as a seed")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the zeroed seed file is still there: %v", err)
	}
	other := bytes.Repeat([]byte{0x11}, 32)
	if err := after.Create(other, "135790"); err != nil {
		t.Fatalf("a new seed after the finished wipe: %v", err)
	}
	if got, err := after.Unlock("135790"); err != nil || !bytes.Equal(got, other) || after.Attempts() != 0 {
		t.Fatalf("the new seed: %x %v, counter %d", got, err, after.Attempts())
	}
}

// Exists answers while an unlock holds the store (argon2id takes seconds on
// a Pi, and the wallet's status asks Exists), as long as the counter is
// below the limit.
func TestExistsDuringUnlock(t *testing.T) {
	s, _ := newStore(t)
	s.mu.Lock() // as Unlock holds it through argon2id
	defer s.mu.Unlock()
	got := make(chan bool, 1)
	go func() { got <- s.Exists() }()
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("Exists says no seed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exists waited for the unlock's lock")
	}
}

// The child role of TestKilledAfterEachAttempt: one attempt with the PIN in
// $KEYSTORE_PIN; after the counter is on the card it says so and waits to
// be killed, as a process losing power or killed mid-attempt would.
func TestMain(m *testing.M) {
	if dir := os.Getenv("KEYSTORE_CHILD_DIR"); dir != "" {
		s := &Store{Dir: dir, Now: waitedClock(), AfterCount: func() {
			os.Stdout.WriteString("counted\n")
			if os.Getenv("KEYSTORE_CHILD_FINISH") == "" {
				time.Sleep(time.Hour)
			}
		}}
		_, err := s.Unlock(os.Getenv("KEYSTORE_PIN"))
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("unlocked\n")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// waitedClock is a clock for a fresh Store whose delay after the restart
// is waited out at once: its first reading (the start) is now, every later
// one an hour on.
func waitedClock() func() time.Time {
	calls := 0
	return func() time.Time {
		calls++
		if calls == 1 {
			return time.Now()
		}
		return time.Now().Add(time.Hour)
	}
}

// attemptKilled runs one attempt in a child process and SIGKILLs it as soon
// as it has counted the attempt (before the PIN is even tried).
func attemptKilled(t *testing.T, dir, pin string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), "KEYSTORE_CHILD_DIR="+dir, "KEYSTORE_PIN="+pin)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if line != "counted\n" {
		t.Fatalf("the child said %q", line)
	}
}

// Acceptance 4 of issue 15: ten wrong PINs wipe the keys also when the
// process is SIGKILLed right after each attempt: the counter survives each
// kill. Nine killed attempts, then the right PIN (in a process that
// finishes) still opens and clears the count; ten more killed attempts,
// and the next process erases the seed even with the right PIN.
func TestKilledAfterEachAttempt(t *testing.T) {
	s, _ := newStore(t)
	for i := 1; i <= 9; i++ {
		attemptKilled(t, s.Dir, "000000")
		if s.Attempts() != i {
			t.Fatalf("after kill %d the counter is %d", i, s.Attempts())
		}
	}
	s2 := &Store{Dir: s.Dir, Now: waitedClock()}
	if _, err := s2.Unlock("482916"); err != nil || s2.Attempts() != 0 {
		t.Fatalf("the right PIN after nine killed attempts: %v, counter %d", err, s2.Attempts())
	}
	for i := 1; i <= DefaultMaxAttempts; i++ {
		attemptKilled(t, s.Dir, "000000")
	}
	// Stat, not Exists: Exists would finish the wipe the counter decided.
	if _, err := os.Stat(filepath.Join(s.Dir, SeedFile)); s.Attempts() != DefaultMaxAttempts || err != nil {
		t.Fatalf("after ten killed attempts: counter %d, seed file %v", s.Attempts(), err)
	}
	s3 := &Store{Dir: s.Dir, Now: waitedClock()}
	if _, err := s3.Unlock("482916"); !errors.Is(err, ErrWiped) || s3.Exists() {
		t.Errorf("the right PIN after ten killed attempts: %v, seed there %v", err, s3.Exists())
	}
}

// BenchmarkUnlock is the cost of one unlock at DefaultParams (argon2id over
// 64 MiB, 3 passes, 4 lanes, and the AEAD), against the same unlock at the
// test costs as the baseline run in the same process.
func BenchmarkUnlock(b *testing.B) {
	for _, c := range []struct {
		name string
		p    Params
	}{{"test-costs", fast}, {"default", DefaultParams}} {
		b.Run(c.name, func(b *testing.B) {
			s := &Store{Dir: filepath.Join(b.TempDir(), "w"), Params: c.p}
			if err := s.Create(entropy, "482916"); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.Unlock("482916"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
