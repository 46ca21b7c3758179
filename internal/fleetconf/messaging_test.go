package fleetconf

import (
	"strings"
	"testing"
)

// [messaging]: a bad passphrase is never Fatal (it concerns no mesh link) and
// leaves messaging closed, open = true included; no problem quotes it.
func TestMessagingSection(t *testing.T) {
	for _, c := range []struct {
		name, src  string
		pass       string
		open       bool
		problems   int
		secret     string // must not appear in the problems
		wantInProb string
	}{
		{"passphrase", "[messaging]\npassphrase = \"kit seven, channel 3\"\n", "kit seven, channel 3", false, 0, "", ""},
		{"open", "[messaging]\nopen = true\n", "", true, 0, "", ""},
		{"neither", "[messaging]\n", "", false, 0, "", ""},
		{"too short", "[messaging]\npassphrase = \"Sh0rtPw\"\n", "", false, 1, "Sh0rtPw", "at least 8 characters"},
		{"too short with open", "[messaging]\npassphrase = \"Sh0rtPw\"\nopen = true\n", "", false, 2, "Sh0rtPw", "stays closed"},
		{"a tab in it", "[messaging]\npassphrase = \"long\\tenough pass\"\n", "", false, 1, "enough pass", "control characters"},
		{"too long", "[messaging]\npassphrase = \"" + strings.Repeat("Abcd", 65) + "\"\n", "", false, 1, "Abcd", "at most 256"},
		{"not a string", "[messaging]\npassphrase = 123456789\n", "", false, 1, "123456789", "must be a string"},
		{"both", "[messaging]\npassphrase = \"kit seven, channel 3\"\nopen = true\n", "kit seven, channel 3", false, 1, "kit seven", "phones must log in"},
		{"open not a boolean", "[messaging]\nopen = \"yes\"\n", "", false, 1, "", "true or false"},
	} {
		for _, device := range []bool{true, false} {
			cfg, probs := Parse([]byte(c.src), device)
			if cfg.Messaging.Passphrase != c.pass || cfg.Messaging.Open != c.open {
				t.Errorf("%s: messaging %+v, want passphrase %q open %v", c.name, cfg.Messaging, c.pass, c.open)
			}
			if len(probs) != c.problems || FailClosed(probs) {
				t.Errorf("%s: problems %v, want %d, none fatal", c.name, probs, c.problems)
			}
			if c.wantInProb != "" && !strings.Contains(joinProblems(probs), c.wantInProb) {
				t.Errorf("%s: problems %v do not say %q", c.name, probs, c.wantInProb)
			}
			if c.secret != "" {
				if g := leaks(t, c.secret, probs); g != "" {
					t.Errorf("%s: problems show %q of the passphrase: %v", c.name, g, probs)
				}
			}
		}
	}
	cfg, _ := Parse([]byte("[messaging]\npassphrase = \"kit seven, channel 3\"\n"), true)
	if r := cfg.Redacted(); r.Messaging.Passphrase != "(set)" {
		t.Errorf("Redacted keeps the passphrase: %q", r.Messaging.Passphrase)
	}
}
