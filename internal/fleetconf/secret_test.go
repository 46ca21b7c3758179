package fleetconf

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// Secret values for the tests. Each is what an operator means as the
// secret; no 4 characters of it may appear in any Problem.
const (
	hexDigitsFirst  = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	hexLettersFirst = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	passphrase      = "Correct Horse Battery Staple"
	// digitsOnly is a valid TOML integer when unquoted.
	digitsOnly = "9182736450918273645"
)

// leaks returns the first run of 4 characters of secret that occurs in the
// problems, compared ignoring case, in their JSON (as served on the status
// page) or in their String form (as logged), or "".
func leaks(t *testing.T, secret string, probs []Problem) string {
	t.Helper()
	js, err := json.Marshal(probs)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	for _, p := range probs {
		logged.WriteString(p.String() + "\n")
	}
	haystacks := []string{strings.ToLower(string(js)), strings.ToLower(logged.String())}
	r := []rune(strings.ToLower(secret))
	for i := 0; i+4 <= len(r); i++ {
		gram := string(r[i : i+4])
		for _, h := range haystacks {
			if strings.Contains(h, gram) {
				return gram
			}
		}
	}
	return ""
}

// secretKeys returns every secret key of the schema as [table, key], so that
// a secret added later is tested too.
func secretKeys() [][2]string {
	var out [][2]string
	for _, s := range schema {
		for _, f := range s.fields {
			if f.secret {
				out = append(out, [2]string{s.name, f.key})
			}
		}
	}
	return out
}

// spellings are the ways to assign a value to a key of a table.
var spellings = []struct {
	name string
	form string // {T}, {K} and {V} are replaced; {UT} and {UK} in upper case; {EK} escaped
}{
	{"header", "[{T}]\n{K} = {V}\n"},
	{"header then more", "[{T}]\n{K} = {V}\n[radio]\ncallsign = \"N0CALL\"\n"},
	{"spaced", "[ {T} ]\n\t {K}\t=   {V}  \n"},
	{"dotted", "{T}.{K} = {V}\n"},
	{"quoted", "[{T}]\n\"{K}\" = {V}\n"},
	{"literal quoted", "[{T}]\n'{K}' = {V}\n"},
	{"quoted dotted", "\"{T}\".\"{K}\" = {V}\n"},
	{"inline table", "{T} = {{K} = {V}}\n"},
	{"inline table then key", "{T} = {{K} = {V}, lan_discovery = false}\n"},
	{"wrong-case header", "[{UT}]\n{K} = {V}\n"},
	{"wrong-case key", "[{T}]\n{UK} = {V}\n"},
	{"escaped key", "[{T}]\n\"{EK}\" = {V}\n"},
	{"CRLF", "[{T}]\r\n{K} = {V}\r\n"},
	{"after comment", "# the secret follows\n[{T}] # table\n{K} = {V} # set by ops\n"},
}

func spell(form, table, key, value string) string {
	esc := ""
	for _, r := range key {
		esc += fmt.Sprintf(`\u%04x`, r)
	}
	return strings.NewReplacer("{T}", table, "{K}", key, "{UT}", strings.ToUpper(table), "{UK}", strings.ToUpper(key), "{EK}", esc, "{V}", value).Replace(form)
}

// badValues are the ways to get a secret's value S wrong: TOML syntax errors
// first, then values that are valid TOML but not a valid secret.
var badValues = []struct {
	name string
	form string // S is replaced by the secret, {K} by the key
}{
	{"0x integer out of range", "0xS"},
	{"signed 0x", "+0xS"},
	{"0b prefix", "0bS"},
	{"0o prefix", "0oS"},
	{"underscores", "1_2_S"},
	{"unquoted", "S"},
	{"unquoted after a digit", "1S"},
	{"float", "1.S"},
	{"exponent", "1eS"},
	{"missing closing quote", `"S`},
	{"missing closing single quote", `'S`},
	{"missing opening quote", `S"`},
	{"trailing garbage", `"S" junk`},
	{"trailing garbage without space", `"S"x = 1`},
	{"second value", `"S" "S"`},
	{"bad escape before", `"\qS"`},
	{"bad escape after", `"S\q"`},
	{"short unicode escape", `"\u12S"`},
	{"line continuation in a basic string", "\"S\\\nS\""},
	{"unterminated multi-line basic", `"""S`},
	{"unterminated multi-line literal", `'''S`},
	{"multi-line running on", "\"\"\"\nS\n"},
	{"value on the next line", "\n\"S\""},
	{"array of bare", "[S]"},
	{"array over lines", "[\n  0xS,\n]"},
	{"array unclosed", `["S"`},
	{"inline table bare", "{a = S}"},
	{"inline table unclosed", `{a = "S"`},
	{"date prefix", "1979-05-27TS"},
	{"time prefix", "07:32:S"},
	{"bool prefix", "trueS"},
	{"duplicate key", "\"S\"\n{K} = \"S\""},
	{"control character", "\"S\x01S\""},
	{"invalid UTF-8", "\"S\xffS\""},
	// Valid TOML, invalid secret.
	{"array", `["S"]`},
	{"table", `{a = "S"}`},
	{"too long", `"S0"`},
	{"too short", `"S"`}, // S is cut to 63 characters, below
	{"non-hex", `"zzzzS"`},
	{"multi-line basic", "\"\"\"\nS\n\"\"\""},
	{"with a newline", `"S\nS"`},
}

// TestNoSecretInProblems writes every secret key, in every spelling, with
// every kind of bad value, and checks that no run of 4 characters of the
// secret appears in the problems.
func TestNoSecretInProblems(t *testing.T) {
	secrets := map[string]string{"digits first": hexDigitsFirst, "letters first": hexLettersFirst, "passphrase": passphrase, "digits only": digitsOnly}
	n := 0
	for _, tk := range secretKeys() {
		for _, sp := range spellings {
			for _, bv := range badValues {
				for sname, secret := range secrets {
					s := secret
					if bv.name == "too short" {
						s = secret[:len(secret)-1]
					}
					v := strings.ReplaceAll(bv.form, "S", s)
					v = strings.ReplaceAll(v, "{K}", tk[1])
					src := spell(sp.form, tk[0], tk[1], v)
					for _, device := range []bool{true, false} {
						_, probs := Parse([]byte(src), device)
						n++
						if g := leaks(t, s, probs); g != "" {
							t.Errorf("%s.%s %s, %s, %s: problems show %q:\n%s\n%s", tk[0], tk[1], sp.name, bv.name, sname, g, src, joinProblems(probs))
						}
						if len(probs) == 0 && !(passphraseKey(tk) && validFile(src)) {
							t.Errorf("%s.%s %s, %s, %s: no problem for\n%s", tk[0], tk[1], sp.name, bv.name, sname, src)
						}
					}
				}
			}
		}
	}
	t.Logf("%d files checked", n)
}

// passphraseKey reports whether a secret key takes passphrases ([wifi] psk,
// [messaging] passphrase), for which some of badValues are good values.
func passphraseKey(tk [2]string) bool {
	switch tk {
	case [2]string{"wifi", "psk"}, [2]string{"wifi", "psk_2"}, [2]string{"wifi", "psk_3"}, [2]string{"wifi", "ap_psk"}, [2]string{"messaging", "passphrase"}:
		return true
	}
	return false
}

// validFile reports whether src is a valid file: some bad network keys are
// good passphrases.
func validFile(src string) bool {
	_, probs := Parse([]byte(src), true)
	return len(probs) == 0
}

// TestIssueSecretCases are the two cases reported: a psk written as a 0x
// integer was echoed whole ("... is out of range for int64"), and an
// unquoted one in part. They failed before secret scrubbing.
func TestIssueSecretCases(t *testing.T) {
	for _, src := range []string{
		"[network]\npsk = 0x" + hexDigitsFirst + "\n",
		"[network]\npsk = " + hexDigitsFirst + "\n",
		"[network]\npsk = " + hexLettersFirst + "\n",
	} {
		_, probs := Parse([]byte(src), true)
		if len(probs) != 1 {
			t.Fatalf("%q: problems %v", src, probs)
		}
		for _, s := range []string{hexDigitsFirst, hexLettersFirst} {
			if g := leaks(t, s, probs); g != "" {
				t.Errorf("%q: problem shows %q: %s", src, g, probs[0])
			}
		}
		// The problem still says where and what.
		if p := probs[0]; p.Line != 2 || p.Column != 7 || !strings.Contains(p.Message, "syntax error") {
			t.Errorf("%q: problem %+v, want a syntax error at 2:7", src, p)
		}
	}
}

func TestSecretSyntaxErrorMessage(t *testing.T) {
	_, probs := Parse([]byte("[node]\nname = \"kit\"\n[network]\npsk = 0x"+hexDigitsFirst+"\n"), true)
	if len(probs) != 1 {
		t.Fatalf("problems %v", probs)
	}
	p := probs[0]
	want := Problem{Line: 4, Column: 7, Key: "network.psk", Fatal: true}
	if p.Line != want.Line || p.Column != want.Column || p.Key != want.Key || !p.Fatal {
		t.Errorf("problem %+v, want %+v", p, want)
	}
	for _, w := range []string{"syntax error", "secret", `psk = "<64 hex characters>"`, failClosedNote} {
		if !strings.Contains(p.Message, w) {
			t.Errorf("message %q lacks %q", p.Message, w)
		}
	}
	// A fixed decoder message that quotes nothing is kept.
	_, probs = Parse([]byte("[wifi]\npsk = \"no end\n"), true)
	if len(probs) != 1 || probs[0].Key != "wifi.psk" || !strings.Contains(probs[0].Message, "strings cannot contain newlines") {
		t.Errorf("problems %v", probs)
	}
	// Syntax errors away from secrets keep the decoder's words.
	_, probs = Parse([]byte("[network]\npsk = \""+hexDigitsFirst+"\"\n[node]\nname = 0x1234567890123456789\n"), true)
	if len(probs) != 1 || probs[0].Line != 4 || probs[0].Key != "" || !strings.Contains(probs[0].Message, "0x1234567890123456789 is out of range") {
		t.Errorf("problems %v", probs)
	}
}

// TestSecretInOtherKeys: a secret's value that also appears in a key that
// is shown (here a peer entry, pasted by mistake) is hidden there too, and
// so is a bare 64-hex-digit run anywhere.
func TestSecretInOtherKeys(t *testing.T) {
	src := "[network]\npsk = \"" + hexDigitsFirst + "\"\npeers = [\"udp://192.0.2.1:5505#" + hexDigitsFirst + "\"]\n"
	_, probs := Parse([]byte(src), true)
	if len(probs) != 1 || probs[0].Key != "network.peers" || leaks(t, hexDigitsFirst, probs) != "" {
		t.Fatalf("problems %v", probs)
	}
	// Without the psk line: the key's shape gives it away.
	_, probs = Parse([]byte("[network]\npeers = [\"udp://192.0.2.1:5505#"+hexLettersFirst+"\"]\n"), true)
	if len(probs) != 1 || leaks(t, hexLettersFirst, probs) != "" {
		t.Fatalf("problems %v", probs)
	}
	// A public key (66 hex digits) is shown as written.
	_, probs = Parse([]byte("[network]\npeers = [\"kiss://x#"+pubHex(8)+"\"]\n"), true)
	if len(probs) != 1 || !strings.Contains(probs[0].Message, pubHex(8)) {
		t.Fatalf("problems %v", probs)
	}
	// Under a key that only looks secret, in a table of its own.
	_, probs = Parse([]byte("[extra]\nwifi_password = \"hunter2hunter2\"\n[radio]\ncallsign = \"hunter2hunter2\"\n"), true)
	if len(probs) != 2 || leaks(t, "hunter2hunter2", probs) != "" {
		t.Fatalf("problems %v", probs)
	}
}

func TestScanSecrets(t *testing.T) {
	src := strings.Join([]string{
		`[network]`,                            // 1
		`psk = "` + hexDigitsFirst + `" # lab`, // 2
		`peers = []`,                           // 3
		`[wifi]`,                               // 4
		`psk = """`,                            // 5
		`two`,                                  // 6
		`"""`,                                  // 7
		`ssid = "x"`,                           // 8
		`network = {psk = [`,                   // 9
		`  "a",`,                               // 10
		`]}`,                                   // 11
		`name = 1`,                             // 12
		`"p\u0073k" = 3`,                       // 13
		`PSK =`,                                // 14
		``,                                     // 15
		`"value"`,                              // 16
		`# a password, not assigned`,           // 17
		`x = 1`,                                // 18
	}, "\n")
	sc := scanSecrets(src)
	want := map[int]string{2: "network.psk", 5: "wifi.psk", 6: "wifi.psk", 7: "wifi.psk", 9: "wifi.network.psk", 10: "wifi.network.psk", 11: "wifi.network.psk", 13: "wifi.psk", 14: "wifi.PSK", 15: "wifi.PSK", 16: "wifi.PSK"}
	for line, key := range want {
		if sc.lines[line] != key {
			t.Errorf("line %d: key %q, want %q", line, sc.lines[line], key)
		}
	}
	for line := range sc.lines {
		if _, ok := want[line]; !ok {
			t.Errorf("line %d (%q) taken for a secret", line, strings.Split(src, "\n")[line-1])
		}
	}
	// The value is the rest of the line after '='.
	if got := sc.material[0]; got != ` "`+hexDigitsFirst+`" # lab` {
		t.Errorf("material[0] = %q", got)
	}
}

func TestScrubber(t *testing.T) {
	s := newScrubber([]string{`"SeCrEt-Vålue"`})
	tests := []struct{ in, want string }{
		{"", ""},
		{"nothing here", "nothing here"},
		{"the secret-vålue leaked", "the " + hiddenMark + " leaked"},
		{"the secret-value leaked", "the " + hiddenMark + "alue leaked"},
		{"CRET", hiddenMark},
		{"a cre b", "a cre b"},        // 3 characters are not a run
		{"xx-vål", "xx" + hiddenMark}, // multi-byte characters are hidden whole
		{"\"sec", hiddenMark},         // the quotes are part of the material
		{"ab" + strings.Repeat("0f", 32) + "!", "ab" + strings.Repeat("0f", 32) + "!"},     // 66 hex digits: the shape of a public key
		{"k " + strings.Repeat("0f", 32) + " k", "k " + hiddenMark + " k"},                 // 64 hex digits
		{"k " + strings.Repeat("0f", 16) + " k", "k " + hiddenMark + " k"},                 // 32 hex digits
		{"k " + strings.Repeat("0f", 15) + "0 k", "k " + strings.Repeat("0f", 15) + "0 k"}, // 31
		{"k " + pubHex(3) + " k", "k " + pubHex(3) + " k"},                                 // a public key
	}
	for _, tc := range tests {
		got := s.Clean(tc.in)
		if got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Clean(%q) = %q is not UTF-8", tc.in, got)
		}
	}
	// A secret that contains the marker itself: nothing of it may come back.
	s = newScrubber([]string{"x(hidden)y"})
	for _, in := range []string{"a (hidden) b", "message not shown: it would reveal"} {
		out := s.Clean(in)
		for i := 0; i+4 <= len(out); i++ {
			if strings.Contains("x(hidden)y", out[i:i+4]) {
				t.Errorf("Clean(%q) = %q shows %q", in, out, out[i:i+4])
			}
		}
	}
}

func TestScrubberLargeMaterial(t *testing.T) {
	// Past maxExactGrams the scrubber hashes; it must still hide every run.
	var b strings.Builder
	for i := 0; b.Len() < 4*maxExactGrams; i++ {
		sum := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		b.WriteString(hex.EncodeToString(sum[:]))
	}
	m := b.String()
	s := newScrubber([]string{m})
	if s.bits == nil {
		t.Fatal("no bit set for large material")
	}
	for i := 0; i+8 <= len(m); i += 997 {
		if got := s.Clean("<" + m[i:i+8] + ">"); strings.Contains(got, m[i:i+4]) || strings.Contains(got, m[i+4:i+8]) {
			t.Fatalf("Clean shows material: %q", got)
		}
	}
}

// FuzzNoSecretInProblems: random text around an assignment of a known secret
// never makes a Problem show 4 characters of it. The fuzzer picks the text
// before and after the line, what comes between '=' and the secret and after
// it on the line, and how the key is spelt.
func FuzzNoSecretInProblems(f *testing.F) {
	f.Add("", "", "", "", uint8(0), uint8(0))
	f.Add("[node]\nname = \"a\"", "0x", "", "[radio]\ncallsign = 1", uint8(0), uint8(0))
	f.Add("", "\"", " junk", "", uint8(1), uint8(1))
	f.Add("[network]\npsk = \"x\"", "\"\"\"", "", "", uint8(2), uint8(2))
	f.Add("a = \"\"\"", "[", "]", "\"\"\"", uint8(3), uint8(0))
	f.Add("", "{a = ", "}", "\n[wifi]\nssid = 7", uint8(4), uint8(1))
	f.Add("x = [", "1979-05-27T", "", "]", uint8(5), uint8(2))
	f.Add("", "\"\\q", "\"", "psk = 2", uint8(6), uint8(0))
	f.Add("[NETWORK]", "'", "", "", uint8(7), uint8(1))
	f.Fuzz(func(t *testing.T, before, pre, post, after string, spelling, which uint8) {
		secrets := []string{hexDigitsFirst, hexLettersFirst, passphrase, digitsOnly}
		secret := secrets[int(which)%len(secrets)]
		keys := secretKeys()
		tk := keys[int(spelling)%len(keys)]
		sp := spellings[int(spelling/2)%len(spellings)]
		// The secret stays on the line of its key.
		pre = strings.ReplaceAll(pre, "\n", " ")
		post = strings.ReplaceAll(post, "\n", " ")
		src := before + "\n" + spell(sp.form, tk[0], tk[1], pre+secret+post) + after
		for _, device := range []bool{true, false} {
			_, probs := Parse([]byte(src), device)
			if g := leaks(t, secret, probs); g != "" {
				t.Fatalf("problems show %q of the secret:\n%s\n%s", g, src, joinProblems(probs))
			}
			for _, p := range probs {
				if p.Message == "" || !utf8.ValidString(p.Message) || !utf8.ValidString(p.Key) {
					t.Fatalf("bad problem %+v", p)
				}
				if strings.HasPrefix(p.Message, "syntax error") && !p.Fatal {
					t.Fatalf("syntax error not fatal: %+v", p)
				}
			}
			if !FailClosed(probs) && len(probs) > 0 && strings.HasPrefix(probs[0].Message, "syntax error") {
				t.Fatal("FailClosed false after a syntax error")
			}
		}
	})
}

func TestPanicText(t *testing.T) {
	s := newScrubber([]string{` "` + hexDigitsFirst + `"`})
	if got := panicText(s, "index out of range near "+hexDigitsFirst[:20]); got != ": index out of range near "+hiddenMark {
		t.Errorf("panicText = %q", got)
	}
	if got := panicText(nil, "x"); got != "" {
		t.Errorf("panicText without a scrubber = %q", got)
	}
}
