// Package cmdline parses the kernel command line (/proc/cmdline) into
// parameters exactly as the Linux kernel splits it (lib/cmdline.c next_arg
// and kernel/params.c parse_args), so that PID 1 sees the same name=value
// pairs the kernel saw. The line comes from the boot partition's cmdline.txt
// plus whatever the Pi firmware prepends, so it is outside input: Parse never
// panics and its output is bounded by its input.
//
// The kernel's rules, which Parse follows:
//
//   - Parameters are separated by white space: the kernel's isspace, which is
//     ASCII space, \t, \n, \v, \f, \r and also the byte 0xA0 (Latin-1
//     no-break space, marked as space in lib/ctype.c).
//   - A double quote toggles "in quotes"; white space in quotes does not
//     separate. There are no escapes: a quote cannot be part of a quoted
//     string.
//   - The name ends at the first '=' after the first byte (a leading '=' is
//     part of the name); without such an '=' the parameter has no value.
//   - A value starting with a quote loses that quote, and the parameter's
//     last byte if it is a quote. A parameter starting with a quote loses that
//     quote and its last byte if that is a quote. Other quotes stay.
//   - "--" on its own ends the kernel's parameters; the rest of the line is
//     for init and is returned unparsed.
//   - The line ends at the first NUL byte, as a C string does.
//
// Names are compared byte for byte: the kernel's equivalence of '-' and '_'
// applies only to module parameters, not to the words init reads.
package cmdline

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxSize bounds how many bytes ReadFile reads. The kernel's own limit
// (COMMAND_LINE_SIZE) is 2048 bytes on arm64 and at most a few KiB on any
// architecture, so a longer file is refused rather than parsed.
const MaxSize = 64 << 10

// Param is one kernel parameter: "name=value", "name" (HasValue false) or
// their quoted forms.
type Param struct {
	Name     string
	Value    string
	HasValue bool
}

// String renders p in a form Parse reads back as p: a name or value holding
// white space is double-quoted (the whole parameter if the name holds it),
// and an empty name without a value is written "". A Param whose name or
// value holds a double quote or a NUL may not round-trip: the kernel's rules
// have no escapes.
func (p Param) String() string {
	switch {
	case !p.HasValue && (p.Name == "" || needsQuotes(p.Name)):
		return `"` + p.Name + `"`
	case !p.HasValue:
		return p.Name
	case needsQuotes(p.Name):
		return `"` + p.Name + "=" + p.Value + `"`
	case needsQuotes(p.Value):
		return p.Name + `="` + p.Value + `"`
	}
	return p.Name + "=" + p.Value
}

func needsQuotes(s string) bool {
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			return true
		}
	}
	return false
}

// Params is a parsed command line in order. A name may appear more than once
// (console= usually does); Get and Map return the last, which is the one most
// kernel code and init systems use.
type Params []Param

// Get returns the value of the last parameter called name that has a value,
// and whether there is one.
func (ps Params) Get(name string) (string, bool) {
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].Name == name && ps[i].HasValue {
			return ps[i].Value, true
		}
	}
	return "", false
}

// Has reports whether a parameter called name appears, with or without a
// value ("quiet", "rootwait").
func (ps Params) Has(name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// Map returns name -> value for every parameter that has a value; for a
// repeated name the last value wins. Parameters without a value are left out.
func (ps Params) Map() map[string]string {
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		if p.HasValue {
			m[p.Name] = p.Value
		}
	}
	return m
}

// Parse splits a kernel command line into its parameters, the way the
// kernel's parse_args does (see the package documentation), and returns them
// with rest, the unparsed text after a "--" parameter (init's arguments;
// empty if there is none). Name and Value of every Param are substrings of
// line, and there are at most len(line)/2+1 of them.
func Parse(line string) (params Params, rest string) {
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	s := skipSpaces(line)
	for s != "" {
		var p Param
		p, s = next(s)
		if !p.HasValue && p.Name == "--" {
			return params, s
		}
		params = append(params, p)
	}
	return params, ""
}

// next takes the parameter at the start of s (which does not start with
// white space and is not empty) and returns it and the text after it, with
// leading white space skipped. It mirrors the kernel's next_arg, which works
// by writing NULs into the line; here the same cuts are slice bounds.
func next(s string) (Param, string) {
	quoted := false
	if s[0] == '"' {
		s = s[1:]
		quoted = true
	}
	inQuote := quoted
	equals := 0 // index of the name's '='; 0 means none, since index 0 cannot be one
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if isSpace(c) && !inQuote {
			break
		}
		if equals == 0 && c == '=' {
			equals = i
		}
		if c == '"' {
			inQuote = !inQuote
		}
	}
	word := s[:i]
	after := ""
	if i < len(s) {
		after = s[i+1:] // the separator is consumed
	}
	after = skipSpaces(after)

	// The kernel cuts the word's closing quote (its last byte) when the
	// parameter or the value opened with one.
	lastQuote := i > 0 && word[i-1] == '"'
	if equals == 0 {
		name := word
		if quoted && lastQuote {
			name = word[:i-1]
		}
		return Param{Name: name}, after
	}
	vstart, vend := equals+1, i
	if vstart < i && word[vstart] == '"' {
		vstart++
		if lastQuote {
			vend = i - 1
		}
	}
	if quoted && lastQuote {
		vend = i - 1
	}
	value := ""
	if vend > vstart {
		value = word[vstart:vend]
	}
	return Param{Name: word[:equals], Value: value, HasValue: true}, after
}

// isSpace is the kernel's isspace (lib/ctype.c): \t \n \v \f \r, space and
// the byte 0xA0.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r') || c == 0xA0
}

func skipSpaces(s string) string {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return s[i:]
}

// ReadFile reads and parses a command line file, normally /proc/cmdline.
// Errors: the file cannot be read, or it is longer than MaxSize bytes (then
// nothing is parsed: a truncated line could drop the parameter that matters).
func ReadFile(path string) (Params, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("cmdline: %s is longer than %d bytes", path, MaxSize)
	}
	ps, _ := Parse(string(b))
	return ps, nil
}
