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
// larger file is reported as a Fatal Problem and ignored.
const MaxFileSize = 1 << 20

// Problem is one thing wrong with fleet.toml. The value in question is
// ignored and its default used instead; when that default could be more open
// than what the file says, the Problem is Fatal (see FailClosed).
//
// No field of a Problem ever holds 4 or more consecutive characters of a
// secret value (network.psk, wifi.psk, or any key that looks like a secret),
// whatever is wrong with the file: Problems are shown on the public status
// page. See secret.go.
type Problem struct {
	// Line is the 1-based line in the file, or 0 when the problem is about
	// the whole file (missing, unreadable, too large) or no line is known.
	Line int `json:"line"`
	// Column is the 1-based column, known only for syntax errors; else 0.
	Column int `json:"column,omitempty"`
	// Key is the dotted TOML key concerned, such as "network.psk"; empty for
	// whole-file problems and for syntax errors, except a syntax error in a
	// secret's value, which names the secret's key.
	Key string `json:"key,omitempty"`
	// Message says what is wrong and what was done instead. A Fatal
	// problem's message ends with "; the node refuses every mesh link until
	// this is fixed".
	Message string `json:"message"`
	// Fatal is true when the configuration in effect could be more open
	// than what the operator wrote: the file could not be read at all
	// (unreadable, larger than MaxFileSize, a TOML syntax error, an
	// internal error), or a security-relevant key (see schema) was given
	// but is invalid, or is misspelt or misplaced so that it is ignored.
	// The caller must then fail closed: see FailClosed.
	Fatal bool `json:"fatal,omitempty"`
}

// failClosedNote ends the message of every Fatal Problem.
const failClosedNote = "the node refuses every mesh link until this is fixed"

// FailClosed reports whether any of ps is Fatal. Then the configuration
// cannot be trusted to be as closed as the operator meant, and the caller
// must fail closed: come up with the Config it was given (the defaults, for a
// file that could not be read), report the Problems and serve status, but
// refuse every mesh link, inbound and outbound, until the file is fixed. A
// missing file, or a missing network.psk, is not Fatal: it is the setting
// for trying a node out (`make run`), and says so in a Problem or warning.
func FailClosed(ps []Problem) bool {
	for _, p := range ps {
		if p.Fatal {
			return true
		}
	}
	return false
}

// fatal returns a Fatal Problem whose message ends with failClosedNote.
func fatal(line, col int, key, msg string) Problem {
	return Problem{Line: line, Column: col, Key: key, Message: msg + "; " + failClosedNote, Fatal: true}
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
//     exists instead, as editors on Windows tend to make it; it is not
//     Fatal, so that a node can be tried out without a file;
//   - an unreadable file, or one larger than MaxFileSize, gives the defaults
//     and one Fatal Problem at Line 0 saying why: the file is there, so the
//     operator meant something that cannot be known.
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
		return Defaults(device), []Problem{fatal(0, 0, "", fmt.Sprintf("cannot read %s: %v; using defaults", path, unwrapPathErr(err)))}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return Defaults(device), []Problem{fatal(0, 0, "", fmt.Sprintf("cannot read %s: %v; using defaults", path, unwrapPathErr(err)))}
	}
	if len(data) > MaxFileSize {
		return Defaults(device), []Problem{fatal(0, 0, "", fmt.Sprintf("larger than %d bytes; using defaults", MaxFileSize))}
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
//   - malformed TOML gives the defaults and one Fatal Problem with the
//     parser's line, column and message (a message of our own naming the
//     key instead, when the error is in a secret's value);
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
//     Where that default could be more open than the value written (see
//     schema for which keys), the Problem is Fatal; so is an unknown key
//     or table that is such a key misspelt or misplaced. An invalid
//     wifi.psk (psk_2, psk_3) also drops its network (its ssid ""), rather
//     than join an open network of that name.
//
// Problems are sorted by line; FailClosed tells whether any is Fatal. No
// Problem holds any part of a secret value (see secret.go). Some values are
// normalized: hex keys to lower case, the callsign to upper case, addresses
// to canonical form.
func Parse(data []byte, device bool) (cfg Config, problems []Problem) {
	// Strip a UTF-8 byte order mark (Notepad writes one) here rather than
	// leave it to the decoder, so that byte offsets in errors match src.
	src := strings.TrimPrefix(string(data), "\xef\xbb\xbf")
	var scrub *scrubber
	defer func() {
		// PID 1 must come up whatever the file holds; a bug here must not
		// take the device down with it. The panic's text could quote the
		// file, so it is shown only once scrubbed.
		if r := recover(); r != nil {
			cfg = Defaults(device)
			problems = []Problem{fatal(0, 0, "", "internal error reading the file"+panicText(scrub, r)+"; using defaults")}
		}
	}()
	scan := scanSecrets(src)
	scrub = newScrubber(scan.material)

	p := &parser{cfg: Defaults(device), device: device, src: src}
	var top map[string]toml.Primitive
	md, err := toml.Decode(src, &top)
	if err != nil {
		return Defaults(device), scrubAll(scrub, []Problem{syntaxProblem(src, err, scan)})
	}
	p.md = &md
	// Secret values the decoder found under any spelling of their key are
	// scrubbed too, in case the same text shows up in another key's message.
	for _, name := range p.docOrder(top) {
		collectSecrets(p.value(top[name]), isSecretName(name), func(v string) { scan.material = append(scan.material, v) })
	}
	scrub = newScrubber(scan.material)
	p.run(top)
	sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
	if p.dropped > 0 {
		msg := fmt.Sprintf("%d more unknown keys not listed", p.dropped)
		if p.droppedFatal {
			p.problems = append(p.problems, fatal(0, 0, "", msg+", among them misspelt or misplaced security settings"))
		} else {
			p.problems = append(p.problems, Problem{Message: msg})
		}
	}
	if p.more > 0 {
		msg := fmt.Sprintf("%d more problems not listed", p.more)
		if p.moreFatal {
			p.problems = append(p.problems, fatal(0, 0, "", msg+", some of them fatal"))
		} else {
			p.problems = append(p.problems, Problem{Message: msg})
		}
	}
	return p.cfg, scrubAll(scrub, p.problems)
}

// panicText returns ": " and the text of the panic value r, scrubbed, or ""
// if there is no scrubber or scrubbing fails too.
func panicText(s *scrubber, r any) (text string) {
	if s == nil {
		return ""
	}
	defer func() {
		if recover() != nil {
			text = ""
		}
	}()
	return ": " + s.Clean(clip(fmt.Sprint(r)))
}

// scrubAll cleans the Key and Message of every problem of secret text.
func scrubAll(s *scrubber, ps []Problem) []Problem {
	for i := range ps {
		// Keys and messages can quote bytes of the file, which need not be
		// UTF-8; the status page is JSON, and a log line must stay readable.
		ps[i].Key = strings.ToValidUTF8(s.Clean(ps[i].Key), "\uFFFD")
		ps[i].Message = strings.ToValidUTF8(s.Clean(ps[i].Message), "\uFFFD")
	}
	return ps
}

// collectSecrets calls add for every string in v that is, or lies below, a
// key whose name looks secret (see isSecretName).
func collectSecrets(v any, secret bool, add func(string)) {
	switch v := v.(type) {
	case string:
		if secret {
			add(v)
		}
	case []any:
		for _, e := range v {
			collectSecrets(e, secret, add)
		}
	case []map[string]any:
		for _, e := range v {
			collectSecrets(e, secret, add)
		}
	case map[string]any:
		for k, e := range v {
			collectSecrets(e, secret || isSecretName(k), add)
		}
	}
}

// Bounds that keep a hostile or runaway file from stalling PID 1: finding a
// key's line costs time proportional to the file size, so only so many are
// looked up, and only so many unknown keys, and problems in all, are
// reported (the rest are counted in one last Problem, Fatal if any of them
// is).
const (
	maxUnknownKeys = 100
	maxProblems    = 200
	maxLineProbes  = 256
)

// syntaxProblem turns a decoder error into a Fatal Problem. The line and
// column are computed from the error's byte offset, because the decoder's own
// line is one too high for errors found at a line's newline (such as an
// unterminated "[table" header).
//
// The decoder's message quotes the text it stumbled on. When the error lies
// on a line that holds a secret value (found by scanSecrets), or the
// decoder's last key is a secret, that text may be the secret: then the
// message is our own, naming the key, and keeps the decoder's words only if
// they are one of its fixed messages that quote nothing.
func syntaxProblem(src string, err error, scan secretScan) Problem {
	const consequence = "; using defaults for the whole file"
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		// Not expected from the decoder; its text is unknown, so not shown.
		return fatal(0, 0, "", "syntax error"+consequence)
	}
	line, col := pe.Position.Line, pe.Position.Col
	if start := pe.Position.Start; line > 0 && start >= 0 && start <= len(src) {
		line = strings.Count(src[:start], "\n") + 1
		col = start - strings.LastIndexByte(src[:start], '\n')
	}
	key, onSecret := scan.lines[line]
	if !onSecret && col <= 1 {
		// An error found at the start of a line may be about the end of
		// the line before.
		key, onSecret = scan.lines[line-1]
	}
	if !onSecret && isSecretName(pe.LastKey) {
		key, onSecret = pe.LastKey, true
	}
	if !onSecret {
		return fatal(line, col, "", "syntax error: "+pe.Message+consequence)
	}
	if len(key) > maxSecretLineKey {
		key = clipBytes(key, maxSecretLineKey)
	}
	if safeSyntaxMessage(pe) {
		return fatal(line, col, key, "syntax error: "+pe.Message+" (the value is secret and not shown)"+consequence)
	}
	return fatal(line, col, key, "syntax error in the value, which is secret and not shown: write it in double quotes on one line, such as "+secretForm(key)+consequence)
}

// fixedSyntaxMessages are decoder messages (BurntSushi/toml) that quote no
// text from the file.
var fixedSyntaxMessages = map[string]bool{
	"strings cannot contain newlines":           true,
	"newlines not allowed within inline tables": true,
	"unexpected EOF":                            true,
	"unexpected EOF; expected value":            true,
	`unexpected EOF; expected '"'`:              true,
	`unexpected EOF; expected '"""'`:            true,
	`unexpected EOF; expected "'"`:              true,
	`unexpected EOF; expected "'''"`:            true,
	"unexpected comma":                          true,
	"unexpected '='":                            true,
}

// safeSyntaxMessage reports whether the decoder's message quotes nothing
// from the file but, at most, the key it names: a fixed message, or a
// duplicate key named as the decoder's last key.
func safeSyntaxMessage(pe toml.ParseError) bool {
	if fixedSyntaxMessages[pe.Message] {
		return true
	}
	return pe.LastKey != "" && pe.Message == "Key '"+pe.LastKey+"' has already been defined."
}

// secretForm shows how to write a secret key, for messages: the schema's
// form for a known secret (in any case), else a placeholder.
func secretForm(key string) string {
	for _, s := range schema {
		for _, f := range s.fields {
			if f.secret && strings.EqualFold(key, s.name+"."+f.key) {
				return f.key + " = " + f.form
			}
		}
	}
	return `key = "<value>"`
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
	secret bool   // never echo the value
	form   string // for a secret: how to write its value, for messages
	// guard marks a security-relevant key: if an invalid value leaves it
	// at its default, the Problem is Fatal (see schema).
	guard bool
	check func(v string, device bool) (string, error)
	str   func(*Config) *string
	list  func(*Config) *[]string
	flag  func(*Config) *bool
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

// secret marks a field whose value is never shown; form shows how to write
// it, such as `"<64 hex characters>"`. A secret's name is also matched
// inside other keys' names (see secretWords), so a new secret is kept out
// of Problems by adding it here.
func secret(f field, form string) field { f.secret = true; f.form = form; return f }

// guard marks a security-relevant field: see schema.
func guard(f field) field { f.guard = true; return f }

// schema lists every key of fleet.toml. The keys of docs/fleet-toml.md §Contract are a
// contract: never rename them.
//
// Which keys fail closed (guard): those where an invalid value, replaced by
// its default, would let more nodes link to this one, or this one to more
// nodes, than the operator wrote. Fatal then makes the caller refuse every
// mesh link until the file is fixed. Thinking as an attacker who wants a
// link to the node (or its traffic):
//   - network.psk: the default (none) is the all-zero network key, which any
//     Skyfleet node holds. Guarded; a psk that is absent, or "", is the
//     deliberate no-key setting for trying a node out and is not Fatal.
//   - network.known_peers_only: the default (false) lets any key holder in.
//   - network.lan_discovery: the default (true) announces the node on the LAN
//     and links to whatever answers with the network key.
//   - node.listen: the default listens on all addresses (0.0.0.0:5505). Only
//     when the whole list falls back to it: dropping some entries of a list
//     listens on fewer addresses, not more.
//
// Not guarded, because their default is as closed as any value, or they
// grant no link:
//   - network.peers, network.relays: outbound targets pinned to a public key,
//     and with known_peers_only the allow-list; dropping entries links to
//     fewer nodes (with known_peers_only and none left, to none).
//   - master.public_key: without a valid key the node takes control from no
//     one (it starts no control link), so the attacker gains nothing; the
//     node is merely unmanaged, which status shows. master.addresses are
//     hints for reaching that key.
//   - release.keys: dropped keys accept fewer updates; none accepts none.
//   - wifi.psk (and psk_2, psk_3): its default ("", an open network) would
//     make the node join any open network with the configured name, a free
//     evil twin; instead an invalid psk drops its network (see wifiChecks),
//     which is closed, and refusing mesh links would not keep the node off
//     that network. wifi.ap_psk: its default with ap_open would run the AP
//     open; an invalid one keeps the AP off instead.
//   - messaging.passphrase, messaging.open: their defaults ("", false) keep
//     the messaging paths to the control credentials, the most closed
//     setting; an invalid passphrase also overrides open = true (see
//     crossChecks), and the mesh is not involved either way.
//   - node.status: the status service gives anyone GET /status and nothing
//     else without the master's signature or the node's API token, and it
//     is served even when failing closed, so refusing mesh links would not
//     narrow it; on a host its default is loopback.
//   - network.interfaces, address, gateway, dns: which networks the node
//     joins and how; every mesh link on them still needs the network key
//     and, where set, a known key.
//   - the rest (names, data, roles, callsign, report interval, hostname,
//     watchdog, NTP servers, [display]) grant nothing; roles dropped announce less, NTP
//     servers dropped leave the time to the mesh.
//
// A table that holds a guarded key, given as something else than a table,
// is Fatal too, as is an unknown key or table whose name is a guarded one in
// another case or another place (`[Network]`, `PSK =`, known_peers_only
// under [node]): the operator clearly meant it, and it is being ignored.
var schema = []section{
	{"node", []field{
		str("name", checkName, func(c *Config) *string { return &c.Node.Name }),
		guard(list("listen", checkListen, func(c *Config) *[]string { return &c.Node.Listen })),
		str("status", checkStatus, func(c *Config) *string { return &c.Node.Status }),
		str("data", checkData, func(c *Config) *string { return &c.Node.Data }),
	}},
	{"network", []field{
		guard(secret(str("psk", checkNetworkPSK, func(c *Config) *string { return &c.Network.PSK }), `"<64 hex characters>"`)),
		list("peers", checkPeer, func(c *Config) *[]string { return &c.Network.Peers }),
		list("relays", checkPeer, func(c *Config) *[]string { return &c.Network.Relays }),
		guard(flag("lan_discovery", func(c *Config) *bool { return &c.Network.LANDiscovery })),
		guard(flag("known_peers_only", func(c *Config) *bool { return &c.Network.KnownPeersOnly })),
		list("roles", checkRole, func(c *Config) *[]string { return &c.Network.Roles }),
		list("interfaces", checkInterface, func(c *Config) *[]string { return &c.Network.Interfaces }),
		str("address", checkStaticAddress, func(c *Config) *string { return &c.Network.Address }),
		str("gateway", checkGateway, func(c *Config) *string { return &c.Network.Gateway }),
		list("dns", checkDNS, func(c *Config) *[]string { return &c.Network.DNS }),
		str("link_timeout", checkLinkTimeout, func(c *Config) *string { return &c.Network.LinkTimeout }),
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
		str("mode", checkWifiMode, func(c *Config) *string { return &c.Wifi.Mode }),
		str("country", checkCountry, func(c *Config) *string { return &c.Wifi.Country }),
		str("ssid", checkSSID, func(c *Config) *string { return &c.Wifi.SSID }),
		secret(str("psk", checkWifiPSK, func(c *Config) *string { return &c.Wifi.PSK }), `"<passphrase of 8-63 characters>"`),
		str("ssid_2", checkSSID, func(c *Config) *string { return &c.Wifi.SSID2 }),
		secret(str("psk_2", checkWifiPSK, func(c *Config) *string { return &c.Wifi.PSK2 }), `"<passphrase of 8-63 characters>"`),
		str("ssid_3", checkSSID, func(c *Config) *string { return &c.Wifi.SSID3 }),
		secret(str("psk_3", checkWifiPSK, func(c *Config) *string { return &c.Wifi.PSK3 }), `"<passphrase of 8-63 characters>"`),
		str("ap_ssid", checkSSID, func(c *Config) *string { return &c.Wifi.APSSID }),
		secret(str("ap_psk", checkAPPSK, func(c *Config) *string { return &c.Wifi.APPSK }), `"<passphrase of 8-63 characters>"`),
		flag("ap_open", func(c *Config) *bool { return &c.Wifi.APOpen }),
	}},
	{"display", []field{
		str("screen", checkScreen, func(c *Config) *string { return &c.Display.Screen }),
		str("rotation", checkRotation, func(c *Config) *string { return &c.Display.Rotation }),
		str("touch", checkTouch, func(c *Config) *string { return &c.Display.Touch }),
		str("touch_calibration", checkCalibration, func(c *Config) *string { return &c.Display.TouchCalibration }),
		str("diagonal", checkDiagonal, func(c *Config) *string { return &c.Display.Diagonal }),
		str("dim_after", checkDimAfter, func(c *Config) *string { return &c.Display.DimAfter }),
	}},
	{"system", []field{
		str("hostname", checkHostname, func(c *Config) *string { return &c.System.Hostname }),
		flag("watchdog", func(c *Config) *bool { return &c.System.Watchdog }),
	}},
	{"messaging", []field{
		secret(str("passphrase", checkMessagingPassphrase, func(c *Config) *string { return &c.Messaging.Passphrase }), `"<passphrase of at least 8 characters>"`),
		flag("open", func(c *Config) *bool { return &c.Messaging.Open }),
	}},
	{"wallet", []field{
		flag("enabled", func(c *Config) *bool { return &c.Wallet.Enabled }),
		str("max_pin_tries", checkPINTries, func(c *Config) *string { return &c.Wallet.MaxPINTries }),
		str("unlock_for", durationIn(30*time.Second, time.Hour), func(c *Config) *string { return &c.Wallet.UnlockFor }),
		str("timeout", durationIn(30*time.Second, 10*time.Minute), func(c *Config) *string { return &c.Wallet.Timeout }),
	}},
	{"time", []field{
		list("servers", checkNTPServer, func(c *Config) *[]string { return &c.Time.Servers }),
	}},
}

type parser struct {
	md           *toml.MetaData
	src          string
	lines        []string // src split into lines, made on first use
	device       bool
	cfg          Config
	problems     []Problem
	keyLine      map[string]int  // line of each known key that was set
	invalid      map[string]bool // known keys given but left at their default
	unknown      int             // unknown keys reported
	dropped      int             // unknown keys not reported (over maxUnknownKeys)
	droppedFatal bool            // some of those would have been Fatal
	more         int             // other problems not reported (over maxProblems)
	moreFatal    bool            // some of those were Fatal
	probes       int             // line lookups made
	order        map[string]int  // document position of each key path, made on first use
}

// unknownKey reports an unknown key, up to maxUnknownKeys of them; isFatal
// marks one that is a security-relevant key misspelt or misplaced.
func (p *parser) unknownKey(prim toml.Primitive, key, msg string, isFatal bool) {
	if p.unknown >= maxUnknownKeys {
		p.dropped++
		p.droppedFatal = p.droppedFatal || isFatal
		return
	}
	p.unknown++
	if isFatal {
		p.push(fatal(p.line(prim), 0, key, msg+"; it is ignored"))
		return
	}
	p.add(p.line(prim), key, msg)
}

// push records a problem, up to maxProblems of them.
func (p *parser) push(pr Problem) {
	if len(p.problems) >= maxProblems {
		p.more++
		p.moreFatal = p.moreFatal || pr.Fatal
		return
	}
	p.problems = append(p.problems, pr)
}

func (p *parser) add(line int, key, msg string) {
	p.push(Problem{Line: line, Key: key, Message: msg})
}

// invalidValue reports that the value of the known key was not used: the
// field keeps its default. For a guarded field the Problem is Fatal.
func (p *parser) invalidValue(line int, key string, f *field, msg string) {
	p.invalid[key] = true
	if f.guard {
		p.push(fatal(line, 0, key, msg))
		return
	}
	p.add(line, key, msg)
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
	p.invalid = map[string]bool{}
	for _, name := range p.docOrder(top) {
		prim := top[name]
		sec := findSection(name)
		if sec == nil {
			p.unknownKey(prim, name, "unknown key"+hintTop(name), guardedTop(name))
			continue
		}
		// Check the type first: the decoder silently yields an empty map
		// when asked to decode a string or an array of tables into one.
		var keys map[string]toml.Primitive
		if v := p.value(prim); !isTable(v) {
			p.sectionProblem(sec, p.line(prim), fmt.Sprintf("must be a table ([%s]), not %s; using defaults for it", name, describe(v)))
			continue
		}
		if err := p.md.PrimitiveDecode(prim, &keys); err != nil {
			p.sectionProblem(sec, p.line(prim), fmt.Sprintf("cannot read table: %v; using defaults for it", err))
			continue
		}
		for _, key := range p.docOrder(keys, name) {
			kp := keys[key]
			f := findField(sec, key)
			if f == nil {
				p.unknownKey(kp, name+"."+key, "unknown key"+hintIn(sec, key), guardedIn(sec, key))
				continue
			}
			p.apply(name+"."+key, f, kp)
		}
	}
	p.crossChecks()
}

// sectionProblem reports a table that could not be read, Fatal if it holds a
// guarded key.
func (p *parser) sectionProblem(sec *section, line int, msg string) {
	for _, f := range sec.fields {
		if f.guard {
			p.push(fatal(line, 0, sec.name, msg))
			return
		}
	}
	p.add(line, sec.name, msg)
}

// guardedTop reports whether an unknown top-level name is, in another case
// or spelling with '-', a table holding a guarded key or a guarded key
// itself (written above every table header).
func guardedTop(name string) bool {
	for _, s := range schema {
		for _, f := range s.fields {
			if f.guard && (fold(s.name) == fold(name) || fold(f.key) == fold(name)) {
				return true
			}
		}
	}
	return false
}

// guardedIn reports whether an unknown key of section sec is a guarded key
// in another case (of sec), or one that belongs in another section.
func guardedIn(sec *section, key string) bool {
	for _, f := range sec.fields {
		if fold(f.key) == fold(key) {
			return f.guard
		}
	}
	for _, s := range schema {
		for _, f := range s.fields {
			if f.guard && fold(f.key) == fold(key) {
				return true
			}
		}
	}
	return false
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
			p.invalidValue(line, key, f, fmt.Sprintf("must be true or false, not %s; %s", describe(v), usingDefault(strconv.FormatBool(*f.flag(&def)))))
			return
		}
		*f.flag(&p.cfg) = b
	case kindString:
		s, ok := v.(string)
		if !ok {
			p.invalidValue(line, key, f, fmt.Sprintf("must be a string, not %s; %s", describe(v), usingDefault(quote(*f.str(&def)))))
			return
		}
		norm, err := f.check(s, p.device)
		if err != nil {
			p.invalidValue(line, key, f, fmt.Sprintf("%v; %s", err, usingDefault(quote(*f.str(&def)))))
			return
		}
		*f.str(&p.cfg) = norm
	case kindList:
		arr, ok := v.([]any)
		if !ok {
			p.invalidValue(line, key, f, fmt.Sprintf("must be an array of strings, not %s; %s", describe(v), usingDefault(quoteList(*f.list(&def)))))
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
			p.invalidValue(line, key, f, "no valid entries; "+usingDefault(quoteList(*f.list(&def))))
			return
		}
		*f.list(&p.cfg) = kept
	}
}

// wifiChecks fails [wifi] closed: a network whose psk is invalid is dropped
// (without its key the node would join an open network of that name, which
// anyone can set up), and an access point whose psk is invalid stays off
// rather than open.
func (p *parser) wifiChecks() {
	w := &p.cfg.Wifi
	for _, n := range []struct {
		ssidKey, pskKey string
		ssid, psk       *string
	}{{"wifi.ssid", "wifi.psk", &w.SSID, &w.PSK}, {"wifi.ssid_2", "wifi.psk_2", &w.SSID2, &w.PSK2}, {"wifi.ssid_3", "wifi.psk_3", &w.SSID3, &w.PSK3}} {
		if p.invalid[n.pskKey] {
			if *n.ssid != "" {
				p.add(p.keyLine[n.ssidKey], n.ssidKey, "this network is not joined until "+n.pskKey+" is fixed, rather than join an open network of this name")
			}
			*n.ssid, *n.psk = "", ""
		}
	}
	if p.invalid["wifi.ap_psk"] {
		p.add(p.keyLine["wifi.ap_psk"], "wifi.ap_psk", "the access point stays off until wifi.ap_psk is fixed, rather than run open")
		w.APOpen = false
	}
	if w.APPSK != "" && w.APOpen {
		p.add(p.keyLine["wifi.ap_open"], "wifi.ap_open", "ignored while wifi.ap_psk is set: the access point uses the key")
		w.APOpen = false
	}
	if w.EffectiveMode() == "ap" && w.APPSK == "" && !w.APOpen && !p.invalid["wifi.ap_psk"] {
		p.add(p.keyLine["wifi.mode"], "wifi.mode", `the access point needs wifi.ap_psk, or ap_open = true for a public kit; it stays off`)
	}
}

// crossChecks validates keys that depend on each other.
func (p *parser) crossChecks() {
	p.radioChecks()
	p.wifiChecks()
	if m := &p.cfg.Messaging; m.Open && (m.Passphrase != "" || p.invalid["messaging.passphrase"]) {
		// Two settings, or a broken one: the more closed one wins.
		msg := "ignored while a passphrase is set: phones must log in (remove one of the two)"
		if m.Passphrase == "" {
			msg = "ignored: messaging stays closed until messaging.passphrase is fixed, rather than open to anyone"
		}
		p.add(p.keyLine["messaging.open"], "messaging.open", msg)
		m.Open = false
	}
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
