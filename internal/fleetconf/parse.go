package fleetconf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// FileName is the name of the configuration file on the boot partition.
const FileName = "fleet.toml"

// MaxFileSize is the largest fleet.toml Load reads, in bytes (1 MiB); a
// larger file is reported as a Problem and ignored.
const MaxFileSize = 1 << 20

// Problem is one thing wrong with fleet.toml. None is fatal: the value in
// question is ignored and its default used instead.
type Problem struct {
	// Line is the 1-based line in the file, or 0 when the problem is about
	// the whole file (missing, unreadable, too large) or no line is known.
	Line int `json:"line"`
	// Column is the 1-based column, known only for syntax errors; else 0.
	Column int `json:"column,omitempty"`
	// Key is the dotted TOML key concerned, such as "network.psk"; empty for
	// syntax errors and whole-file problems.
	Key string `json:"key,omitempty"`
	// Message says what is wrong and what was done instead.
	Message string `json:"message"`
}

// String formats p like a compiler message:
// "fleet.toml:7: network.psk: must be 64 hex characters ...", with
// ":column" after the line when known, and without the line or key parts when
// they are unknown ("fleet.toml: file not found; using defaults").
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(FileName)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
		if p.Column > 0 {
			b.WriteString(":" + strconv.Itoa(p.Column))
		}
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Load reads and parses the file at path (see Parse). It never fails:
//   - a missing file gives the defaults and one informational Problem at
//     Line 0 ("file not found; using defaults"), naming path+".txt" if that
//     exists instead, as editors on Windows tend to make it;
//   - an unreadable file, or one larger than MaxFileSize, gives the defaults
//     and one Problem at Line 0 saying why.
func Load(path string, device bool) (Config, []Problem) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			msg := "file not found; using defaults"
			if st, err := os.Stat(path + ".txt"); err == nil && st.Mode().IsRegular() {
				base := filepath.Base(path)
				msg += fmt.Sprintf("; found %s.txt: rename it to %s", base, base)
			}
			return Defaults(device), []Problem{{Message: msg}}
		}
		return Defaults(device), []Problem{{Message: fmt.Sprintf("cannot read %s: %v; using defaults", path, unwrapPathErr(err))}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return Defaults(device), []Problem{{Message: fmt.Sprintf("cannot read %s: %v; using defaults", path, unwrapPathErr(err))}}
	}
	if len(data) > MaxFileSize {
		return Defaults(device), []Problem{{Message: fmt.Sprintf("larger than %d bytes; using defaults", MaxFileSize)}}
	}
	return Parse(data, device)
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse reads fleet.toml from data, starting from Defaults(device). It never
// fails and always returns a complete Config:
//   - malformed TOML gives the defaults and one Problem with the parser's
//     line, column and message;
//   - every unknown key (or table) gives one Problem naming it and its
//     line, with a hint when it looks like a misspelt or misplaced key; keys
//     below an unknown key are not reported separately; after 100 unknown
//     keys (in document order) the rest are only counted, in one final
//     Problem at Line 0;
//   - every invalid value (wrong type, or failing the checks documented on
//     Config's fields) gives a Problem naming its key and line, and that
//     field keeps its default while the rest of the file still applies. In
//     a list, invalid entries are dropped one by one (each with a Problem);
//     if none is left of a non-empty list, the field keeps its default.
//
// Problems are sorted by line. Secrets (network.psk, wifi.psk) never appear
// in messages. Some values are normalized: hex keys to lower case, the
// callsign to upper case, addresses to canonical form.
func Parse(data []byte, device bool) (cfg Config, problems []Problem) {
	defer func() {
		// PID 1 must come up whatever the file holds; a bug here must not
		// take the device down with it.
		if r := recover(); r != nil {
			cfg = Defaults(device)
			problems = []Problem{{Message: fmt.Sprintf("internal error reading the file: %v; using defaults", r)}}
		}
	}()

	// Strip a UTF-8 byte order mark (Notepad writes one) here rather than
	// leave it to the decoder, so that byte offsets in errors match src.
	src := strings.TrimPrefix(string(data), "\xef\xbb\xbf")
	p := &parser{cfg: Defaults(device), device: device, src: src}
	var top map[string]toml.Primitive
	md, err := toml.Decode(src, &top)
	if err != nil {
		return Defaults(device), []Problem{syntaxProblem(src, err)}
	}
	p.md = &md
	p.run(top)
	sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
	if p.dropped > 0 {
		p.problems = append(p.problems, Problem{Message: fmt.Sprintf("%d more unknown keys not listed", p.dropped)})
	}
	return p.cfg, p.problems
}

// Bounds that keep a hostile or runaway file from stalling PID 1: finding a
// key's line costs time proportional to the file size, so only so many are
// looked up, and only so many unknown keys are reported.
const (
	maxUnknownKeys = 100
	maxLineProbes  = 256
)

// syntaxProblem turns a decoder error into a Problem. The line and column
// are computed from the error's byte offset, because the decoder's own line
// is one too high for errors found at a line's newline (such as an
// unterminated "[table" header).
func syntaxProblem(src string, err error) Problem {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return Problem{Message: "syntax error: " + strings.TrimPrefix(err.Error(), "toml: ") + "; using defaults for the whole file"}
	}
	line, col := pe.Position.Line, pe.Position.Col
	if start := pe.Position.Start; line > 0 && start >= 0 && start <= len(src) {
		line = strings.Count(src[:start], "\n") + 1
		col = start - strings.LastIndexByte(src[:start], '\n')
	}
	return Problem{
		Line:    line,
		Column:  col,
		Message: "syntax error: " + pe.Message + "; using defaults for the whole file",
	}
}

type kind int

const (
	kindString kind = iota
	kindList
	kindBool
)

// field describes one key of a section: its type, its check and where it
// lives in Config.
type field struct {
	key    string
	kind   kind
	secret bool // never echo the value
	check  func(v string, device bool) (string, error)
	str    func(*Config) *string
	list   func(*Config) *[]string
	flag   func(*Config) *bool
}

type section struct {
	name   string
	fields []field
}

func str(key string, check func(string, bool) (string, error), at func(*Config) *string) field {
	return field{key: key, kind: kindString, check: check, str: at}
}

func list(key string, check func(string, bool) (string, error), at func(*Config) *[]string) field {
	return field{key: key, kind: kindList, check: check, list: at}
}

func flag(key string, at func(*Config) *bool) field {
	return field{key: key, kind: kindBool, flag: at}
}

func secret(f field) field { f.secret = true; return f }

// schema lists every key of fleet.toml. The keys of DESIGN.md are a
// contract: never rename them.
var schema = []section{
	{"node", []field{
		str("name", checkName, func(c *Config) *string { return &c.Node.Name }),
		list("listen", checkListen, func(c *Config) *[]string { return &c.Node.Listen }),
		str("status", checkStatus, func(c *Config) *string { return &c.Node.Status }),
		str("data", checkData, func(c *Config) *string { return &c.Node.Data }),
	}},
	{"network", []field{
		secret(str("psk", checkNetworkPSK, func(c *Config) *string { return &c.Network.PSK })),
		list("peers", checkPeer, func(c *Config) *[]string { return &c.Network.Peers }),
		list("relays", checkPeer, func(c *Config) *[]string { return &c.Network.Relays }),
		flag("lan_discovery", func(c *Config) *bool { return &c.Network.LANDiscovery }),
		flag("known_peers_only", func(c *Config) *bool { return &c.Network.KnownPeersOnly }),
		list("roles", checkRole, func(c *Config) *[]string { return &c.Network.Roles }),
		list("interfaces", checkInterface, func(c *Config) *[]string { return &c.Network.Interfaces }),
		str("address", checkStaticAddress, func(c *Config) *string { return &c.Network.Address }),
		str("gateway", checkGateway, func(c *Config) *string { return &c.Network.Gateway }),
		list("dns", checkDNS, func(c *Config) *[]string { return &c.Network.DNS }),
	}},
	{"master", []field{
		str("public_key", checkPublicKey, func(c *Config) *string { return &c.Master.PublicKey }),
		list("addresses", checkHint, func(c *Config) *[]string { return &c.Master.Addresses }),
		str("report_interval", checkReportInterval, func(c *Config) *string { return &c.Master.ReportInterval }),
	}},
	{"release", []field{
		list("keys", checkReleaseKey, func(c *Config) *[]string { return &c.Release.Keys }),
	}},
	{"radio", []field{
		str("callsign", checkCallsign, func(c *Config) *string { return &c.Radio.Callsign }),
	}},
	{"wifi", []field{
		str("ssid", checkSSID, func(c *Config) *string { return &c.Wifi.SSID }),
		secret(str("psk", checkWifiPSK, func(c *Config) *string { return &c.Wifi.PSK })),
	}},
	{"system", []field{
		str("hostname", checkHostname, func(c *Config) *string { return &c.System.Hostname }),
		flag("watchdog", func(c *Config) *bool { return &c.System.Watchdog }),
	}},
}

type parser struct {
	md       *toml.MetaData
	src      string
	lines    []string // src split into lines, made on first use
	device   bool
	cfg      Config
	problems []Problem
	keyLine  map[string]int // line of each known key that was set
	unknown  int            // unknown keys reported
	dropped  int            // unknown keys not reported (over maxUnknownKeys)
	probes   int            // line lookups made
	order    map[string]int // document position of each key path, made on first use
}

// unknownKey reports an unknown key, up to maxUnknownKeys of them.
func (p *parser) unknownKey(prim toml.Primitive, key, msg string) {
	if p.unknown >= maxUnknownKeys {
		p.dropped++
		return
	}
	p.unknown++
	p.add(p.line(prim), key, msg)
}

func (p *parser) add(line int, key, msg string) {
	p.problems = append(p.problems, Problem{Line: line, Key: key, Message: msg})
}

// docOrder returns the keys of m in the order they first appear in the
// document (keys the decoder did not list go last, by name), so that which
// problems are reported does not depend on map iteration order.
func (p *parser) docOrder(m map[string]toml.Primitive, parent ...string) []string {
	if p.order == nil {
		p.order = map[string]int{}
		for i, k := range p.md.Keys() {
			id := strings.Join(k, "\x00")
			if _, ok := p.order[id]; !ok {
				p.order[id] = i
			}
		}
	}
	pos := func(k string) int {
		if i, ok := p.order[strings.Join(append(parent[:len(parent):len(parent)], k), "\x00")]; ok {
			return i
		}
		return len(p.order)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		pi, pj := pos(keys[i]), pos(keys[j])
		if pi != pj {
			return pi < pj
		}
		return keys[i] < keys[j]
	})
	return keys
}

func (p *parser) run(top map[string]toml.Primitive) {
	p.keyLine = map[string]int{}
	for _, name := range p.docOrder(top) {
		prim := top[name]
		sec := findSection(name)
		if sec == nil {
			p.unknownKey(prim, name, "unknown key"+hintTop(name))
			continue
		}
		// Check the type first: the decoder silently yields an empty map
		// when asked to decode a string or an array of tables into one.
		var keys map[string]toml.Primitive
		if v := p.value(prim); !isTable(v) {
			p.add(p.line(prim), name, fmt.Sprintf("must be a table ([%s]), not %s; using defaults for it", name, describe(v)))
			continue
		}
		if err := p.md.PrimitiveDecode(prim, &keys); err != nil {
			p.add(p.line(prim), name, fmt.Sprintf("cannot read table: %v; using defaults for it", err))
			continue
		}
		for _, key := range p.docOrder(keys, name) {
			kp := keys[key]
			f := findField(sec, key)
			if f == nil {
				p.unknownKey(kp, name+"."+key, "unknown key"+hintIn(sec, key))
				continue
			}
			p.apply(name+"."+key, f, kp)
		}
	}
	p.crossChecks()
}

func findSection(name string) *section {
	for i := range schema {
		if schema[i].name == name {
			return &schema[i]
		}
	}
	return nil
}

func findField(s *section, key string) *field {
	for i := range s.fields {
		if s.fields[i].key == key {
			return &s.fields[i]
		}
	}
	return nil
}

// fold makes keys comparable for hints: lower case, '-' as '_'.
func fold(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }

// hintTop suggests a section for an unknown top-level key.
func hintTop(name string) string {
	for _, s := range schema {
		if fold(s.name) == fold(name) {
			return fmt.Sprintf("; did you mean [%s]?", s.name)
		}
	}
	var in []string
	for _, s := range schema {
		for _, f := range s.fields {
			if fold(f.key) == fold(name) {
				in = append(in, "["+s.name+"]")
			}
		}
	}
	if len(in) > 0 {
		return fmt.Sprintf("; %q belongs in %s (keys above the first [section] header are top-level)", name, strings.Join(in, " or "))
	}
	return ""
}

// hintIn suggests a key for an unknown key in a known section.
func hintIn(sec *section, key string) string {
	for _, f := range sec.fields {
		if fold(f.key) == fold(key) {
			return fmt.Sprintf("; did you mean %q?", f.key)
		}
	}
	var in []string
	for _, s := range schema {
		for _, f := range s.fields {
			if fold(f.key) == fold(key) {
				in = append(in, "["+s.name+"]")
			}
		}
	}
	if len(in) > 0 {
		return fmt.Sprintf("; %q belongs in %s", key, strings.Join(in, " or "))
	}
	return ""
}

// value returns the decoded Go value of a primitive: string, int64,
// float64, bool, time.Time, []any, map[string]any or []map[string]any.
func (p *parser) value(prim toml.Primitive) any {
	var v any
	_ = p.md.PrimitiveDecode(prim, &v)
	return v
}

func (p *parser) apply(key string, f *field, prim toml.Primitive) {
	line := p.line(prim)
	p.keyLine[key] = line
	v := p.value(prim)
	def := Defaults(p.device)
	switch f.kind {
	case kindBool:
		b, ok := v.(bool)
		if !ok {
			p.add(line, key, fmt.Sprintf("must be true or false, not %s; %s", describe(v), usingDefault(strconv.FormatBool(*f.flag(&def)))))
			return
		}
		*f.flag(&p.cfg) = b
	case kindString:
		s, ok := v.(string)
		if !ok {
			p.add(line, key, fmt.Sprintf("must be a string, not %s; %s", describe(v), usingDefault(quote(*f.str(&def)))))
			return
		}
		norm, err := f.check(s, p.device)
		if err != nil {
			p.add(line, key, fmt.Sprintf("%v; %s", err, usingDefault(quote(*f.str(&def)))))
			return
		}
		*f.str(&p.cfg) = norm
	case kindList:
		arr, ok := v.([]any)
		if !ok {
			p.add(line, key, fmt.Sprintf("must be an array of strings, not %s; %s", describe(v), usingDefault(quoteList(*f.list(&def)))))
			return
		}
		kept := []string{}
		at := line
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				p.add(at, key, fmt.Sprintf("entry %d must be a string, not %s; entry dropped", i+1, describe(e)))
				continue
			}
			at = p.entryLine(at, s)
			norm, err := f.check(s, p.device)
			if err != nil {
				shown := quote(clip(s))
				if f.secret {
					shown = "(hidden)"
				}
				p.add(at, key, fmt.Sprintf("entry %d %s: %v; entry dropped", i+1, shown, err))
				continue
			}
			kept = append(kept, norm)
		}
		if len(arr) > 0 && len(kept) == 0 && len(*f.list(&def)) > 0 {
			p.add(line, key, "no valid entries; "+usingDefault(quoteList(*f.list(&def))))
			return
		}
		*f.list(&p.cfg) = kept
	}
}

// crossChecks validates keys that depend on each other.
func (p *parser) crossChecks() {
	n := &p.cfg.Network
	if n.Gateway == "" {
		return
	}
	line := p.keyLine["network.gateway"]
	if n.Address == "" {
		p.add(line, "network.gateway", "is only used with a static network.address; ignored")
		n.Gateway = ""
		return
	}
	if own, _, _ := strings.Cut(n.Address, "/"); own == n.Gateway {
		p.add(line, "network.gateway", fmt.Sprintf("%s is the node's own address (network.address); ignored", n.Gateway))
		n.Gateway = ""
		return
	}
	if !prefixContains(n.Address, n.Gateway) {
		p.add(line, "network.gateway", fmt.Sprintf("%s is outside the subnet of network.address %s; ignored", n.Gateway, n.Address))
		n.Gateway = ""
	}
}

func usingDefault(def string) string {
	if def == `""` || def == "[]" {
		return "ignored"
	}
	return "using the default " + def
}

func quote(s string) string { return strconv.Quote(s) }

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// clip shortens long values in messages.
func clip(s string) string {
	const max = 160
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func isTable(v any) bool { _, ok := v.(map[string]any); return ok }

// describe names the TOML type of a decoded value for messages.
func describe(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date/time"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case nil:
		return "nothing"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// lineProbe makes the TOML decoder report where a key is: decoding into it
// always fails, and the decoder wraps that failure in a ParseError carrying
// the key's position.
type lineProbe struct{}

var errProbe = errors.New("probe")

// UnmarshalTOML implements toml.Unmarshaler by failing.
func (lineProbe) UnmarshalTOML(any) error { return errProbe }

// line returns the 1-based line where the key of prim is defined, or 0 if
// unknown or after maxLineProbes lookups. Keys created implicitly (by dotted
// keys or [a.b] headers) have no position of their own; for them it returns
// the first line of their children.
func (p *parser) line(prim toml.Primitive) int {
	return p.lineDepth(prim, 0)
}

func (p *parser) lineDepth(prim toml.Primitive, depth int) int {
	if p.probes >= maxLineProbes {
		return 0
	}
	p.probes++
	var probe lineProbe
	var pe toml.ParseError
	if err := p.md.PrimitiveDecode(prim, &probe); errors.As(err, &pe) && pe.Position.Line > 0 {
		return pe.Position.Line
	}
	if depth >= 8 {
		return 0
	}
	var sub map[string]toml.Primitive
	if err := p.md.PrimitiveDecode(prim, &sub); err != nil {
		return 0
	}
	best := 0
	for _, sp := range sub {
		if l := p.lineDepth(sp, depth+1); l > 0 && (best == 0 || l < best) {
			best = l
		}
	}
	return best
}

// entryLine finds the line of a list entry with value s, searching from the
// line of the previous entry (or the key); best effort, for arrays written
// over several lines. It returns from if the text is not found.
func (p *parser) entryLine(from int, s string) int {
	if from <= 0 || s == "" {
		return from
	}
	if p.lines == nil {
		p.lines = strings.Split(p.src, "\n")
	}
	for i := from - 1; i < len(p.lines) && i < from-1+1000; i++ {
		l := p.lines[i]
		if strings.Contains(l, `"`+s+`"`) || strings.Contains(l, `'`+s+`'`) {
			return i + 1
		}
	}
	return from
}
