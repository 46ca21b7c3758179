package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/durable"
	"github.com/skyfleet/skyfleet/services/msg"
	"github.com/skyfleet/skyfleet/services/saf"
)

// nodeFlags adds the flags that pick a node and a credential (see cmdMesh).
func nodeFlags(fs *flag.FlagSet) func() (*nodeClient, error) {
	node := fs.String("node", "", "the node's status API `HOST:PORT` (default 127.0.0.1:8080, or [node] status of --config)")
	config := fs.String("config", "", "the node's `fleet.toml`: its status address and API token")
	tokenFile := fs.String("token-file", "", "the node's API token `file` (<data>/api.token)")
	keyFile := fs.String("key", "", "the fleet master's key `file`: sign requests with it")
	return func() (*nodeClient, error) { return newNodeClient(*node, *config, *tokenFile, *keyFile) }
}

func apiError(raw []byte, code int) error {
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(raw, &e)
	if e.Error == "" {
		e.Error = http.StatusText(code)
	}
	return fmt.Errorf("node answered %d: %s", code, e.Error)
}

// inClear marks a message that travels in clear (msg.Clear).
func inClear(clear bool) string {
	if clear {
		return "  (in clear)"
	}
	return ""
}

// cmdMsg sends and lists text messages through a node.
func cmdMsg(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, `send and read text messages through a node

Usage:
  skyfleet msg send   [flags] [--clear] --to ADDRESS TEXT...
  skyfleet msg inbox  [flags] [--json]
  skyfleet msg outbox [flags] [--json]

A message (up to 1000 bytes of UTF-8) is signed with the node's key, encrypted to the
recipient's key and carried hop by hop as a store-and-forward bundle: every node on
the way keeps it on disk until the next one has it, so a recipient that is offline
gets it when it comes back (within 7 days). send exits 0 once the node holds the
message durably and prints its ID; outbox shows each message's state: held (still
here), forwarded (the next hop has it), delivered (the recipient's receipt came back),
expired. --to * sends to every node of the fleet.

--clear sends the message signed but not encrypted: the only kind that crosses
amateur-radio links (fleet.toml [node] listen kiss+... or afsk+...), where
encryption is not allowed, and so readable by anyone listening. A sealed message
never goes on the radio; it waits for another way.

Which node and the credential: --config, --node, --token-file, --key as for
'skyfleet mesh' (see skyfleet mesh --help).

Examples:
  skyfleet msg send --config a/fleet.toml --to 2GgFvqoyk9RjwVzj8tqfcXVXB4orBwoc9qv "water at the school"
  skyfleet msg inbox --node 192.0.2.7:80 --key master.key --json
`)
		if len(args) == 0 {
			return exitError(2)
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("msg", "msg "+sub+" [flags]", "")
	client := nodeFlags(fs)
	to := fs.String("to", "", "send: the recipient's `ADDRESS` (or public key in hex; * for every node)")
	asJSON := fs.Bool("json", false, "inbox, outbox: print the API's JSON")
	clear := fs.Bool("clear", false, "send: signed but not encrypted, so that it may cross amateur-radio links (anyone listening reads it)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	switch sub {
	case "send":
		text := strings.Join(fs.Args(), " ")
		if *to == "" || text == "" {
			return fmt.Errorf("send needs --to ADDRESS and the text")
		}
		body, _ := json.Marshal(msg.SendRequest{To: *to, Text: text, Clear: *clear})
		raw, code, err := c.call(http.MethodPost, "/msg/send", bytes.NewReader(body), 15*time.Second)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return apiError(raw, code)
		}
		var e msg.OutboxEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("node API: %w", err)
		}
		fmt.Println(e.ID)
		return nil
	case "inbox", "outbox":
		raw, code, err := c.call(http.MethodGet, "/msg/"+sub, nil, 15*time.Second)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return apiError(raw, code)
		}
		if *asJSON {
			os.Stdout.Write(raw)
			return nil
		}
		if sub == "inbox" {
			var es []msg.InboxEntry
			if err := json.Unmarshal(raw, &es); err != nil {
				return fmt.Errorf("node API: %w", err)
			}
			for _, e := range es {
				fmt.Printf("%s  from %s  sent %s  received %s%s\n  %s\n", e.ID[:16], e.From, orUnknown(e.SentAt), orUnknown(e.ReceivedAt), inClear(e.Clear), e.Text)
			}
			fmt.Fprintf(os.Stderr, "%d messages\n", len(es))
			return nil
		}
		var es []msg.OutboxEntry
		if err := json.Unmarshal(raw, &es); err != nil {
			return fmt.Errorf("node API: %w", err)
		}
		for _, e := range es {
			fmt.Printf("%s  to %s  %-9s  sent %s%s\n  %s\n", e.ID[:16], e.To, e.State, orUnknown(e.SentAt), inClear(e.Clear), e.Text)
		}
		fmt.Fprintf(os.Stderr, "%d messages\n", len(es))
		return nil
	}
	return fmt.Errorf("unknown msg command %q (send, inbox, outbox)", sub)
}

func orUnknown(s string) string {
	if s == "" {
		return "(clock unknown)"
	}
	return s
}

// cmdSAF moves bundles between a node and a directory: the data mule.
func cmdSAF(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, `carry store-and-forward bundles on a USB stick between nodes that never link

Usage:
  skyfleet saf export [flags] --to DIR     write every bundle the node holds for others
  skyfleet saf import [flags] --from DIR   give the node every bundle file in DIR
  skyfleet saf stats  [flags]              the node's custody store and streams (JSON)

Each bundle is one file, ID.sfb, written durably. Export leaves custody with the node
(a stick acknowledges nothing); import reports how many the node took, already had
(duplicates are recognised by ID) or refused as expired. Carry the directory to a node
on the other island and import it there; its answers come back the same way.

Which node and the credential: --config, --node, --token-file, --key as for
'skyfleet mesh' (see skyfleet mesh --help).
`)
		if len(args) == 0 {
			return exitError(2)
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("saf", "saf "+sub+" [flags]", "")
	client := nodeFlags(fs)
	toDir := fs.String("to", "", "export: the `DIR` to write bundle files to (made if missing)")
	fromDir := fs.String("from", "", "import: the `DIR` to read bundle files from")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	switch sub {
	case "stats":
		raw, code, err := c.call(http.MethodGet, "/saf/stats", nil, 15*time.Second)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return apiError(raw, code)
		}
		os.Stdout.Write(raw)
		return nil
	case "export":
		if *toDir == "" {
			return fmt.Errorf("export needs --to DIR")
		}
		if err := os.MkdirAll(*toDir, 0o755); err != nil {
			return err
		}
		resp, err := c.do(http.MethodGet, "/saf/export", nil, 0)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("node answered %s", resp.Status)
		}
		n := 0
		err = saf.ReadExport(resp.Body, func(file []byte) error {
			t, _, err := saf.ParseFile(file)
			if err != nil {
				return err
			}
			n++
			fmt.Fprintf(os.Stderr, "\rexported %d bundles", n)
			return durable.WriteFile(filepath.Join(*toDir, saf.IDOf(t.Bundle).String()+saf.FileExt), file, 0o644)
		})
		fmt.Fprintf(os.Stderr, "\rexported %d bundles to %s\n", n, *toDir)
		return err
	case "import":
		if *fromDir == "" {
			return fmt.Errorf("import needs --from DIR")
		}
		files, err := filepath.Glob(filepath.Join(*fromDir, "*"+saf.FileExt))
		if err != nil {
			return err
		}
		counts := map[string]int{}
		for i, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			raw, code, err := c.call(http.MethodPost, "/saf/import", bytes.NewReader(b), 30*time.Second)
			if err != nil {
				return err
			}
			var res struct {
				Status string `json:"status"`
				Error  string `json:"error"`
			}
			json.Unmarshal(raw, &res)
			switch {
			case code == http.StatusBadRequest:
				counts["malformed"]++
				fmt.Fprintf(os.Stderr, "\n%s: %s\n", filepath.Base(f), res.Error)
			case code != http.StatusOK && code != http.StatusInsufficientStorage:
				return apiError(raw, code)
			default:
				counts[res.Status]++
			}
			fmt.Fprintf(os.Stderr, "\rimported %d/%d", i+1, len(files))
		}
		fmt.Fprintf(os.Stderr, "\r%d files: %d accepted, %d duplicate, %d expired, %d full, %d malformed\n", len(files),
			counts["accepted"], counts["duplicate"], counts["expired"], counts["full"], counts["malformed"])
		if counts["full"] > 0 || counts["malformed"] > 0 {
			return exitError(1)
		}
		return nil
	}
	return fmt.Errorf("unknown saf command %q (export, import, stats)", sub)
}
