package fleetconf

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// [time] servers: the forms the NTP client takes, stored canonically; a bad entry
// is dropped with a problem on its line, and the rest apply.
func TestParseTimeServers(t *testing.T) {
	src := `[time]
servers = [
  "pool.ntp.org",
  "192.0.2.1:123",
  "[2001:DB8::1]:1123",
  "2001:db8::2",
  "[2001:db8::3]",
  "ntp.example.org:10123",
  "pool.ntp.org:",
  "bad host",
  "192.0.2.1:70000",
  "[192.0.2.1]:123",
  "[2001:db8::4]x",
  "0.0.0.0",
  "224.0.1.1",
  "",
  "udp://192.0.2.1:123",
  5,
]
`
	for _, device := range []bool{true, false} {
		c, problems := Parse([]byte(src), device)
		want := []string{"pool.ntp.org", "192.0.2.1:123", "[2001:db8::1]:1123", "2001:db8::2", "2001:db8::3", "ntp.example.org:10123"}
		if !reflect.DeepEqual(c.Time.Servers, want) {
			t.Errorf("device=%v: servers = %q, want %q", device, c.Time.Servers, want)
		}
		if len(problems) != 10 {
			t.Errorf("device=%v: %d problems, want one per bad entry: %v", device, len(problems), problems)
		}
		for i, p := range problems {
			if p.Fatal || p.Key != "time.servers" {
				t.Errorf("problem %+v: want a non-fatal one about time.servers", p)
			}
			// Entries are found by their text (best effort: "" and 5 take the
			// line of the entry before them).
			if i < 7 && p.Line != 9+i || p.Line < 9 || p.Line > 18 {
				t.Errorf("problem %d on line %d: %+v", i, p.Line, p)
			}
		}
		if FailClosed(problems) {
			t.Error("a bad NTP server fails closed: it grants nothing")
		}
	}
	for _, msg := range []string{"missing port", "host \"bad host\"", "outside 1-65535", "not an IPv6 address", "after the IPv6 address", "0.0.0.0 is not a usable server", "224.0.1.1 is not a usable server", "empty server", "without a scheme", "must be a string"} {
		_, problems := Parse([]byte(src), true)
		found := false
		for _, p := range problems {
			found = found || strings.Contains(p.Message, msg)
		}
		if !found {
			t.Errorf("no problem says %q", msg)
		}
	}
}

// No [time] means no NTP, on a device and on a host; a [time] that is not a table,
// or servers that is not a list, is a problem that leaves it so, and never fatal.
func TestParseTimeDefaults(t *testing.T) {
	for _, device := range []bool{true, false} {
		if s := Defaults(device).Time.Servers; len(s) != 0 {
			t.Errorf("device=%v: default servers %q, want none", device, s)
		}
	}
	for _, src := range []string{
		"time = 5\n",
		"[time]\nservers = \"pool.ntp.org\"\n",
		"[time]\nserver = [\"pool.ntp.org\"]\n",
		"[time]\nservers = [\"\"]\n",
	} {
		c, problems := Parse([]byte(src), true)
		if len(problems) != 1 || problems[0].Fatal || problems[0].Line != strings.Count(src, "\n") {
			t.Errorf("%q: problems %+v, want one non-fatal on the last line", src, problems)
		}
		if len(c.Time.Servers) != 0 {
			t.Errorf("%q: servers %q", src, c.Time.Servers)
		}
	}
	if _, problems := Parse([]byte("[time]\nSERVERS = []\n"), true); len(problems) != 1 || !strings.Contains(problems[0].Message, `did you mean "servers"`) || problems[0].Fatal {
		t.Errorf("key in another case: %+v", problems)
	}
}

// The servers survive the TOML encoder, under the documented key.
func TestTimeRoundTrip(t *testing.T) {
	c, problems := Parse([]byte("[time]\nservers = [\"pool.ntp.org\", \"[2001:db8::1]:123\"]\n"), true)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "[time]") || !strings.Contains(buf.String(), "servers = ") {
		t.Errorf("encoded config lacks [time] servers:\n%s", buf.String())
	}
	c2, problems := Parse(buf.Bytes(), true)
	if len(problems) != 0 || !reflect.DeepEqual(c2.Time, c.Time) {
		t.Errorf("round trip: %+v %v, want %+v", c2.Time, problems, c.Time)
	}
}

// Roles of the form announcements carry the time in are refused.
func TestRoleReservedForTime(t *testing.T) {
	c, problems := Parse([]byte("[network]\nroles = [\"gateway\", \"_t123\", \"_t\", \"_tx1\"]\n"), true)
	if want := []string{"gateway", "_t", "_tx1"}; !reflect.DeepEqual(c.Network.Roles, want) {
		t.Errorf("roles = %q, want %q", c.Network.Roles, want)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Message, "reserved for the time") || problems[0].Fatal {
		t.Errorf("problems = %+v", problems)
	}
}
