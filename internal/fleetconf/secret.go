package fleetconf

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Keeping secrets out of Problems.
//
// Problems end up on the public status page (config_errors), in logs and on
// the console, so no part of a secret value may appear in one. The checks in
// validate.go never quote a secret, but the TOML decoder's syntax errors quote
// whatever text they stumbled on ("0x0011…ff is out of range for int64",
// `expected value but found "0011…"`), and a broken file cannot be decoded to
// learn which value belongs to which key. So secrets are found in the raw
// text, without the decoder (scanSecrets), and two independent layers keep
// them out:
//
//  1. A syntax error on a line that holds a secret's value (or whose last
//     key, as the decoder reports it, is a secret) gets a message of our own
//     naming the line, column and key; the decoder's words are kept only when
//     they are one of its fixed messages that quote nothing (syntaxProblem).
//  2. Every Problem's Key and Message are scrubbed (scrubber) of every run of
//     4 bytes, ignoring ASCII case, of: the text after the '=' of every
//     assignment of a secret, with the lines its value runs on to; every
//     secret value the decoder found, under any spelling of its key; and
//     every run of 32 or more hex digits other than a 66-digit public key.
//
// Layer 1 alone covers every syntax error the tests make; layer 2 also
// catches a secret pasted into another key whose value is shown, and
// whatever a later message may quote. It masks our own words too where they
// happen to share 4 characters with a secret ("every" and "Battery"): that
// tells a reader the secret holds those 4 characters, a few bits, but a
// check that looks at where text came from could miss a path.
//
// Which keys are secret comes from the schema (fields marked secret), so a
// secret key added there is covered without further change; words that
// operators use for secrets under other names are added to that list.

// secretWords are matched, ignoring case, inside key names: a key containing
// one of them is treated as secret wherever it appears (any table, any case,
// quoted or dotted), so that "[NETWORK] psk", "wifi_psk" and "password" are
// covered as well as network.psk. It is built from the schema.
var secretWords = func() []string {
	words := []string{"pass", "secret", "token", "private"}
	for _, s := range schema {
		for _, f := range s.fields {
			if f.secret && !containsFold(words, f.key) {
				words = append(words, strings.ToLower(f.key))
			}
		}
	}
	return words
}()

func containsFold(list []string, s string) bool {
	for _, w := range list {
		if strings.EqualFold(w, s) {
			return true
		}
	}
	return false
}

// isSecretName reports whether a key name (one segment, or a dotted path:
// its last segment counts) names a secret.
func isSecretName(key string) bool {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		key = key[i+1:]
	}
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// secretScan is what the raw text says about secrets.
type secretScan struct {
	// lines maps the 1-based number of every line that holds (part of) a
	// secret value to the key it belongs to, as best known.
	lines map[int]string
	// material is the text that may hold secret values: for each
	// assignment of a secret key, the text after its '=' and any following
	// lines the value runs on to.
	material []string
}

// maxSecretLineKey bounds the length of a key name taken from the text.
const maxSecretLineKey = 64

// scanSecrets finds the lines of src that assign a secret key, by text alone
// (src need not be valid TOML). It errs on the side of finding too much: a
// commented-out assignment, or a multi-line value, counts too.
func scanSecrets(src string) secretScan {
	sc := secretScan{lines: map[int]string{}}
	lines := strings.Split(src, "\n")
	table := ""
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if t, ok := tableHeader(l); ok {
			table = t
		}
		eq, word := findSecretAssign(l)
		if eq < 0 {
			continue
		}
		key := secretLineKey(table, l, eq, word)
		sc.lines[i+1] = key
		rest := ""
		if eq < len(l) {
			rest = l[eq+1:]
		}
		more := valueExtent(rest)
		sc.material = append(sc.material, rest)
		// The value runs on: add whole lines until it ends.
		for j := i + 1; more != nil && j < len(lines); j++ {
			sc.lines[j+1] = key
			sc.material = append(sc.material, lines[j])
			i = j
			more = more(lines[j])
		}
	}
	return sc
}

// tableHeader returns the dotted name of a "[table]" or "[[array]]" header
// line, with quotes and spaces removed.
func tableHeader(l string) (string, bool) {
	t := strings.TrimSpace(l)
	if !strings.HasPrefix(t, "[") {
		return "", false
	}
	t = strings.TrimLeft(t, "[")
	end := strings.IndexByte(t, ']')
	if end < 0 {
		return "", false
	}
	return normKey(t[:end]), true
}

// normKey turns a key as written (`"network" . psk`) into a dotted path
// (network.psk), clipped to maxSecretLineKey bytes.
func normKey(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	s := strings.Join(parts, ".")
	if len(s) > maxSecretLineKey {
		s = clipBytes(s, maxSecretLineKey)
	}
	return s
}

func clipBytes(s string, n int) string {
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// findSecretAssign looks for a secret word in a key on line l: the word,
// then more key characters, quotes or blanks, then '='. It returns the index
// of the first such '=' on the line (so the value is never left out) and its
// word, or -1. A key alone on its line (its value written on the next line,
// which TOML does not allow but people do) counts too, with the index
// len(l). Keys spelt with escapes ("ps\u006b") are found by unescaping the
// line once; then the first '=' of the line counts. It takes time linear in
// the length of l, whatever l holds.
func findSecretAssign(l string) (eq int, word string) {
	if eq, word = findAssign(l); eq >= 0 || strings.IndexByte(l, '\\') < 0 {
		return eq, word
	}
	if u := unescapeLoose(l); u != l {
		if e, w := findAssign(u); e >= 0 {
			if first := strings.IndexByte(l, '='); first >= 0 {
				return first, w
			}
			return len(l), w
		}
	}
	return -1, ""
}

// findAssign is findSecretAssign without unescaping.
func findAssign(l string) (eq int, word string) {
	lower := asciiLower(l)
	// keyEnd is where the text that can only be the start of a key ends: a
	// word after it is in a comment or a value.
	keyEnd := 0
	for keyEnd < len(l) && (isBareKeyByte(l[keyEnd]) || strings.IndexByte(" \t.\"'", l[keyEnd]) >= 0) {
		keyEnd++
	}
	eq = -1
	for _, w := range secretWords {
		for from := 0; ; {
			i := strings.Index(lower[from:], w)
			if i < 0 {
				break
			}
			start := from + i
			j := start + len(w)
			for j < len(l) && isBareKeyByte(l[j]) {
				j++
			}
			// Every later match inside the same key ends at the same j,
			// with the same outcome: go on from there.
			from = j
			for j < len(l) && (l[j] == '"' || l[j] == '\'' || l[j] == ' ' || l[j] == '\t' || l[j] == '\r') {
				j++
			}
			found := -1
			if j < len(l) && l[j] == '=' {
				found = j
			} else if (j == len(l) || l[j] == '#') && start <= keyEnd {
				found = len(l)
			}
			if found >= 0 {
				if eq < 0 || found < eq {
					eq, word = found, w
				}
				break
			}
		}
	}
	return eq, word
}

// unescapeLoose replaces the TOML escapes \xHH, \uXXXX and \UXXXXXXXX in l
// by the characters they stand for, wherever they are (no string syntax is
// checked), so that an escaped key name can be recognized.
func unescapeLoose(l string) string {
	var b strings.Builder
	for i := 0; i < len(l); i++ {
		if l[i] == '\\' && i+1 < len(l) {
			n := 0
			switch l[i+1] {
			case 'x':
				n = 2
			case 'u':
				n = 4
			case 'U':
				n = 8
			}
			if n > 0 && i+2+n <= len(l) {
				if v, err := strconv.ParseUint(l[i+2:i+2+n], 16, 32); err == nil && utf8.ValidRune(rune(v)) {
					b.WriteRune(rune(v))
					i += 1 + n
					continue
				}
			}
		}
		b.WriteByte(l[i])
	}
	return b.String()
}

// secretLineKey names the key a secret assignment on line l belongs to, as
// written: the table, then the key before the first '=' and, for an inline
// table, the secret word.
func secretLineKey(table, l string, eq int, word string) string {
	first := strings.IndexByte(l, '=')
	if first < 0 || first > eq {
		first = eq
	}
	expr := normKey(unescapeLoose(strings.TrimSpace(l[:first])))
	path := expr
	if !strings.Contains(asciiLower(expr), word) {
		path = expr + "." + word // inside an inline table
	}
	if table != "" {
		path = table + "." + path
	}
	return normKey(path)
}

// runOn is given each line after a secret assignment whose value may run on
// to it; it returns how to go on after that line, nil when the value ends.
type runOn func(line string) runOn

// valueExtent returns how the value that starts in rest (the text after a
// secret's '=') runs on to the following lines, or nil if it ends on its
// line. All of rest is taken as the value, comments and any other keys of an
// inline table included: cutting it shorter would trust a parse of text
// that may not be valid.
func valueExtent(rest string) runOn {
	t := strings.TrimLeft(rest, " \t")
	switch {
	case t == "" || t == "\r" || t[0] == '#':
		return nextNonBlank
	case strings.HasPrefix(t, `"""`) || strings.HasPrefix(t, "'''"):
		if d := t[:3]; !strings.Contains(t[3:], d) {
			return until(d)
		}
	case t[0] == '[' || t[0] == '{':
		if d := bracketDepth(t); d > 0 {
			return balance(d)
		}
	}
	return nil
}

// nextNonBlank runs on to the next line that is not blank.
func nextNonBlank(line string) runOn {
	if strings.TrimSpace(line) == "" {
		return nextNonBlank
	}
	return nil
}

// until runs on to the line holding the delimiter d (of a multi-line string).
func until(d string) runOn {
	var f runOn
	f = func(line string) runOn {
		if strings.Contains(line, d) {
			return nil
		}
		return f
	}
	return f
}

// balance runs on until depth more brackets or braces are closed.
func balance(depth int) runOn {
	return func(line string) runOn {
		if d := depth + bracketDepth(line); d > 0 {
			return balance(d)
		}
		return nil
	}
}

// bracketDepth counts '[' and '{' less ']' and '}' in s, outside quotes
// (roughly: escapes are honoured, multi-line strings are not).
func bracketDepth(s string) int {
	d := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[', '{':
			d++
		case ']', '}':
			d--
		case '"', '\'':
			end := closingQuote(s[i:])
			if end < 0 {
				return d
			}
			i += end
		case '#':
			return d
		}
	}
	return d
}

// closingQuote returns the index in s of the quote that closes the string
// s starts with (" honours backslash escapes, ' does not), or -1.
func closingQuote(s string) int {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q:
			return i
		}
	}
	return -1
}

// asciiLower lowers ASCII letters only, so that byte offsets are kept.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// scrubber removes secret text from messages. It remembers every 4-byte run
// of the secret material, lower-cased; Clean masks every run of a message
// that is one of them, so no 4 or more characters of a secret survive
// (a character is at least one byte). Small material is kept exactly; past
// maxExactGrams runs it is kept in a hashed bit set, whose false matches
// only mask more than needed.
type scrubber struct {
	exact map[[4]byte]struct{}
	bits  []uint64 // 1<<gramBits bits, used once exact is full
}

const (
	maxExactGrams = 1 << 14
	gramBits      = 20
)

// newScrubber returns a scrubber for the given secret material.
func newScrubber(material []string) *scrubber {
	s := &scrubber{exact: map[[4]byte]struct{}{}}
	for _, m := range material {
		m = asciiLower(m)
		for i := 0; i+4 <= len(m); i++ {
			s.add([4]byte{m[i], m[i+1], m[i+2], m[i+3]})
		}
	}
	return s
}

func gramHash(g [4]byte) uint32 {
	v := uint32(g[0]) | uint32(g[1])<<8 | uint32(g[2])<<16 | uint32(g[3])<<24
	return (v * 2654435761) >> (32 - gramBits) // Knuth's multiplicative hash
}

func (s *scrubber) add(g [4]byte) {
	if s.bits == nil {
		if _, ok := s.exact[g]; ok || len(s.exact) < maxExactGrams {
			s.exact[g] = struct{}{}
			return
		}
		s.bits = make([]uint64, 1<<gramBits/64)
		for e := range s.exact {
			h := gramHash(e)
			s.bits[h/64] |= 1 << (h % 64)
		}
	}
	h := gramHash(g)
	s.bits[h/64] |= 1 << (h % 64)
}

func (s *scrubber) has(g [4]byte) bool {
	if s.bits != nil {
		h := gramHash(g)
		return s.bits[h/64]&(1<<(h%64)) != 0
	}
	_, ok := s.exact[g]
	return ok
}

// Markers put in place of hidden text. The last resort is too short to hold
// any 4-byte run.
const (
	hiddenMark    = "(hidden)"
	hiddenMessage = "(message not shown: it would reveal part of a secret)"
	hiddenLast    = "-"
)

// Clean returns text with every part that may come from a secret replaced
// by hiddenMark: runs of 4 bytes found in the secret material (ignoring
// ASCII case), and runs of 32 or more hex digits other than exactly 66 (a
// compressed public key, which the file shows openly in peers and keys),
// as 64 hex digits is the form of both network.psk and a raw Wi-Fi key.
// Masks are widened to whole UTF-8 characters. If the result still held a
// secret run (the marker itself could complete one), the whole text is
// replaced.
func (s *scrubber) Clean(text string) string {
	if text == "" {
		return text
	}
	if !s.dirty(text) {
		return text
	}
	mask := s.mask(text)
	var b strings.Builder
	for i := 0; i < len(text); {
		if !mask[i] {
			b.WriteByte(text[i])
			i++
			continue
		}
		for i < len(text) && mask[i] {
			i++
		}
		b.WriteString(hiddenMark)
	}
	for _, out := range []string{b.String(), hiddenMessage} {
		if !s.dirty(out) {
			return out
		}
	}
	return hiddenLast
}

// dirty reports whether text holds anything Clean would mask.
func (s *scrubber) dirty(text string) bool {
	for _, m := range s.mask(text) {
		if m {
			return true
		}
	}
	return false
}

// mask marks the bytes of text that Clean hides.
func (s *scrubber) mask(text string) []bool {
	mask := make([]bool, len(text))
	lower := asciiLower(text)
	for i := 0; i+4 <= len(lower); i++ {
		if s.has([4]byte{lower[i], lower[i+1], lower[i+2], lower[i+3]}) {
			mask[i], mask[i+1], mask[i+2], mask[i+3] = true, true, true, true
		}
	}
	for i := 0; i < len(text); {
		if !isHex(text[i : i+1]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isHex(text[j:j+1]) {
			j++
		}
		if n := j - i; n >= 32 && n != 66 {
			for k := i; k < j; k++ {
				mask[k] = true
			}
		}
		i = j
	}
	// Widen to whole characters, so no broken UTF-8 is left behind.
	for i := 0; i < len(text); {
		_, size := utf8.DecodeRuneInString(text[i:])
		hit := false
		for k := i; k < i+size; k++ {
			hit = hit || mask[k]
		}
		if hit {
			for k := i; k < i+size; k++ {
				mask[k] = true
			}
		}
		i += size
	}
	return mask
}
