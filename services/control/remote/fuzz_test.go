package remote

import (
	"bytes"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Request payloads captured from OpenSSH 9's ssh -tt with SendEnv=LANG and
// SetEnv=FOO=bar, as a server received them.
var (
	opensshPtyReq = mustHex("0000000e787465726d2d323536636f6c6f72000000000000000000000000000000000000010581" +
		"0000960080000096000100000003020000001c030000007f0400000015050000000406000000ff07000000ff080000001109" +
		"000000130a0000001a0c000000120d000000170e00000016120000000f1e000000001f0000000020000000002100000000220" +
		"000000023000000002400000001250000000026000000012700000000280000000029000000002a0000000032000000013300" +
		"0000013400000000350000000136000000013700000001380000000039000000003a000000003b000000013c000000013d00" +
		"0000013e0000000046000000014700000000480000000149000000004a000000004b000000005a000000015b000000015c00" +
		"0000005d0000000000")
	opensshEnvLANG = mustHex("000000044c414e470000000b656e5f55532e5554462d38")
	opensshEnvFOO  = mustHex("00000003464f4f00000003626172")
	opensshExec    = mustHex("0000002b736b79666c6565742d63702067657420222f7065726d2f736b79666c6565742f6d6573682e636c6f636b22")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// The captured payloads decode to what OpenSSH was asked to send.
func TestOpenSSHPayloads(t *testing.T) {
	p, err := parsePtyRequest(opensshPtyReq)
	if err != nil || p.Term != "xterm-256color" {
		t.Errorf("pty-req: %+v, %v", p, err)
	}
	if n, v, err := parseEnv(opensshEnvLANG); err != nil || n != "LANG" || v != "en_US.UTF-8" {
		t.Errorf("env LANG: %q %q %v", n, v, err)
	}
	if _, _, err := parseEnv(opensshEnvFOO); err == nil {
		t.Error("env FOO accepted")
	}
	c, err := parseExec(opensshExec)
	if err != nil || c != `skyfleet-cp get "/perm/skyfleet/mesh.clock"` {
		t.Errorf("exec: %q, %v", c, err)
	}
	r, err := parseCopy(c)
	if err != nil || r.verb != "get" || r.path != "/perm/skyfleet/mesh.clock" {
		t.Errorf("parseCopy: %+v, %v", r, err)
	}
}

func TestRequestRefusals(t *testing.T) {
	for name, payload := range map[string][]byte{
		"empty":         nil,
		"trailing byte": append(append([]byte(nil), opensshPtyReq...), 0),
		"short":         opensshPtyReq[:10],
		"NUL in TERM":   ssh.Marshal(ptyRequest{Term: "xterm\x00evil"}),
		"newline TERM":  ssh.Marshal(ptyRequest{Term: "xterm\nX=1"}),
		"long TERM":     ssh.Marshal(ptyRequest{Term: strings.Repeat("x", maxEnvValue+1)}),
	} {
		if _, err := parsePtyRequest(payload); err == nil {
			t.Errorf("pty-req %s accepted", name)
		}
	}
	for name, payload := range map[string][]byte{
		"PATH":       ssh.Marshal(envRequest{"PATH", "/tmp"}),
		"LD_PRELOAD": ssh.Marshal(envRequest{"LD_PRELOAD", "/tmp/x.so"}),
		"NUL":        ssh.Marshal(envRequest{"LANG", "C\x00"}),
		"space":      ssh.Marshal(envRequest{"TERM", "a b"}),
		"trailing":   append(ssh.Marshal(envRequest{"LANG", "C"}), 1),
	} {
		if _, _, err := parseEnv(payload); err == nil {
			t.Errorf("env %s accepted", name)
		}
	}
	if _, err := parseExec(ssh.Marshal(execRequest{"echo a\x00b"})); err == nil {
		t.Error("exec with NUL accepted")
	}
	if _, err := parseWindowChange(ssh.Marshal(windowChange{1, 2, 3, 4})[:15]); err == nil {
		t.Error("short window-change accepted")
	}
}

// A session keeps one TERM and one LANG, however many env requests come.
func TestSetEnvReplaces(t *testing.T) {
	ss := &session{}
	for i := range 1000 {
		ss.setEnv("TERM", "t"+strconv.Itoa(i))
		ss.setEnv("LANG", "l"+strconv.Itoa(i))
	}
	if len(ss.env) != 2 || ss.env[0] != "TERM=t999" || ss.env[1] != "LANG=l999" {
		t.Errorf("env %q", ss.env)
	}
}

// FuzzPtyRequest: what parsePtyRequest accepts re-marshals to the same bytes
// (no byte ignored) and has a terminal type safe for the environment.
func FuzzPtyRequest(f *testing.F) {
	f.Add(opensshPtyReq)
	// What golang.org/x/crypto/ssh's Session.RequestPty sends (our Shell).
	f.Add(ssh.Marshal(ptyRequest{Term: "xterm", Cols: 80, Rows: 24, Modes: "\x00"}))
	f.Add(ssh.Marshal(ptyRequest{Term: "xterm\x00", Cols: 1 << 31}))
	f.Fuzz(func(t *testing.T, payload []byte) {
		p, err := parsePtyRequest(payload)
		if err != nil {
			return
		}
		if !bytes.Equal(ssh.Marshal(p), payload) {
			t.Fatalf("%x accepted as %+v, which marshals differently", payload, p)
		}
		if checkEnvValue(p.Term) != nil {
			t.Fatalf("terminal type %q accepted", p.Term)
		}
	})
}

// FuzzWindowChange: an accepted payload is exactly the four sizes.
func FuzzWindowChange(f *testing.F) {
	f.Add(ssh.Marshal(windowChange{Cols: 132, Rows: 43}))
	f.Add(ssh.Marshal(windowChange{0xffffffff, 0xffffffff, 0, 0}))
	f.Add([]byte{0, 0, 0, 80})
	f.Fuzz(func(t *testing.T, payload []byte) {
		wc, err := parseWindowChange(payload)
		if (err == nil) != (len(payload) == 16) {
			t.Fatalf("%d-byte payload: %v", len(payload), err)
		}
		if err == nil && !bytes.Equal(ssh.Marshal(wc), payload) {
			t.Fatalf("%x accepted as %+v", payload, wc)
		}
	})
}

// FuzzEnvRequest: only TERM and LANG with a printable value get through.
func FuzzEnvRequest(f *testing.F) {
	f.Add(opensshEnvLANG)
	f.Add(opensshEnvFOO)
	f.Add(ssh.Marshal(envRequest{"TERM", "xterm-256color"}))
	f.Add(ssh.Marshal(envRequest{"LANG", "C\x00"}))
	f.Fuzz(func(t *testing.T, payload []byte) {
		name, value, err := parseEnv(payload)
		if err != nil {
			if name != "" || value != "" {
				t.Fatal("a refusal returned a name or value")
			}
			return
		}
		if name != "TERM" && name != "LANG" {
			t.Fatalf("name %q accepted", name)
		}
		if checkEnvValue(value) != nil {
			t.Fatalf("value %q accepted", value)
		}
		if !bytes.Equal(ssh.Marshal(envRequest{name, value}), payload) {
			t.Fatalf("%x accepted as %s=%s", payload, name, value)
		}
	})
}

// FuzzExecRequest: an accepted command is the payload's whole string, NUL-free;
// if it is a skyfleet-cp command, parseCopy either refuses it or yields an
// absolute path and a verb with its arguments.
func FuzzExecRequest(f *testing.F) {
	f.Add(opensshExec)
	f.Add(ssh.Marshal(execRequest{copyCommandLine("put", "/boot/fleet.toml", "644")}))
	f.Add(ssh.Marshal(execRequest{copyCommandLine("put", "/a b/\"c\"\n", "4755")}))
	f.Add(ssh.Marshal(execRequest{"uname -a"}))
	f.Add(ssh.Marshal(execRequest{"skyfleet-cp get /x\x00y"}))
	f.Fuzz(func(t *testing.T, payload []byte) {
		cmd, err := parseExec(payload)
		if err != nil {
			return
		}
		if strings.IndexByte(cmd, 0) >= 0 || !bytes.Equal(ssh.Marshal(execRequest{cmd}), payload) {
			t.Fatalf("%x accepted as %q", payload, cmd)
		}
		checkCopy(t, cmd)
	})
}

// checkCopy asserts parseCopy's promises for one command line.
func checkCopy(t *testing.T, cmd string) {
	t.Helper()
	r, err := parseCopy(cmd)
	if err != nil {
		return
	}
	if !isCopy(cmd) || (r.verb != "get" && r.verb != "put") || checkPath(r.path) != nil {
		t.Fatalf("%q accepted as %+v", cmd, r)
	}
	if r.verb == "get" && r.mode != 0 {
		t.Fatalf("%q: get with mode %v", cmd, r.mode)
	}
	if r.mode&^(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
		t.Fatalf("%q: mode %v has bits beyond permissions, setuid, setgid, sticky", cmd, r.mode)
	}
	// The client's own rendering of the request parses back to it.
	var again copyRequest
	if r.verb == "get" {
		again, err = parseCopy(copyCommandLine("get", r.path))
	} else {
		again, err = parseCopy(copyCommandLine("put", r.path, formatMode(r.mode)))
	}
	if err != nil || again != r {
		t.Fatalf("%+v re-rendered parses as %+v, %v", r, again, err)
	}
}

// FuzzSplitArgs: splitting is undone by quoting each argument; an unquoted
// argument never holds a space or tab, and no argument comes from nothing.
func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{
		` get /perm/skyfleet/mesh.clock`, ` put "/a b/\"c\"" 644`, ` put  "/tab\there"	755 `,
		` "unterminated`, ` "a"b`, ` "\xff\x00"`, ``, `"" ""`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := splitArgs(s)
		if err != nil {
			if args != nil {
				t.Fatal("arguments with an error")
			}
			return
		}
		if len(args) > len(s) {
			t.Fatalf("%d arguments from %d bytes", len(args), len(s))
		}
		var b strings.Builder
		for _, a := range args {
			b.WriteString(" " + strconv.Quote(a))
		}
		again, err := splitArgs(b.String())
		if err != nil || len(again) != len(args) {
			t.Fatalf("%q -> %q -> %q, %v", s, args, again, err)
		}
		for i := range args {
			if again[i] != args[i] {
				t.Fatalf("%q -> %q -> %q", s, args, again)
			}
		}
		// Every skyfleet-cp command built from these arguments parses safely.
		checkCopy(t, cpCommand+s)
	})
}

// FuzzGlobalRequest: the node proof goes only to an exact NodeProofRequest
// with no payload, and is always a valid proof; everything else is refused.
func FuzzGlobalRequest(f *testing.F) {
	node := newKey(f)
	srv := &Server{HostKey: node}
	sid := bytes.Repeat([]byte{7}, 32)
	hostKey := []byte("host key wire bytes")
	f.Add(NodeProofRequest, []byte(nil))
	f.Add(NodeProofRequest, []byte{0})
	f.Add("keepalive@openssh.com", []byte(nil))
	f.Add("tcpip-forward", ssh.Marshal(struct {
		Addr string
		Port uint32
	}{"0.0.0.0", 22}))
	f.Fuzz(func(t *testing.T, reqType string, payload []byte) {
		ok, reply := srv.globalReply(reqType, payload, sid, hostKey)
		if ok != (reqType == NodeProofRequest && len(payload) == 0) {
			t.Fatalf("%q with %d-byte payload answered %v", reqType, len(payload), ok)
		}
		if !ok {
			if reply != nil {
				t.Fatal("a refusal carries a payload")
			}
			return
		}
		if err := VerifyNodeProof(node.PubKey().SerializeCompressed(), sid, hostKey, reply); err != nil {
			t.Fatalf("proof does not verify: %v", err)
		}
	})
}

// FuzzForwardTarget: a direct-tcpip payload leads to Server.API only when it
// names APIHost in a well-formed RFC 4254 §7.2 message, and never anywhere else.
func FuzzForwardTarget(f *testing.F) {
	srv := &Server{API: "127.0.0.1:80"}
	f.Add(ssh.Marshal(directTCPIP{Host: APIHost, Port: 80, OriginAddr: "0.0.0.0"}))
	f.Add(ssh.Marshal(directTCPIP{Host: "127.0.0.1", Port: 22}))
	f.Add(ssh.Marshal(directTCPIP{Host: APIHost + "\x00", Port: 80}))
	f.Add([]byte{0, 0, 0, 12})
	f.Fuzz(func(t *testing.T, payload []byte) {
		target, err := srv.forwardTarget(payload)
		if err != nil {
			if target != "" {
				t.Fatalf("a refusal names target %q", target)
			}
			return
		}
		var d directTCPIP
		if ssh.Unmarshal(payload, &d) != nil || d.Host != APIHost || target != srv.API {
			t.Fatalf("payload %x led to %q", payload, target)
		}
	})
}
