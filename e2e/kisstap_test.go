//go:build e2e

package e2e

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/drivers/radio/kiss"
)

// kissTap is a TCP proxy in front of a KISS TNC's port that writes one line
// per frame to path: the time since the tap opened, the direction ("tx" to
// the TNC, "rx" from it), the fragment (datagram number, index/count, bytes)
// and, once a datagram is whole, what the link carried in it (the router's
// frame types and sizes). It is how the tests show where a radio link's time
// went. It returns the address to dial instead of tnc.
func kissTap(t *testing.T, tnc, path string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var mu sync.Mutex
	logLine := func(s string) {
		mu.Lock()
		fmt.Fprintf(out, "%9.3f %s\n", time.Since(start).Seconds(), s)
		mu.Unlock()
	}
	t.Cleanup(func() { ln.Close(); mu.Lock(); out.Close(); mu.Unlock() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", tnc)
			if err != nil {
				c.Close()
				continue
			}
			go tapCopy(u, c, "tx", logLine)
			go tapCopy(c, u, "rx", logLine)
		}
	}()
	return ln.Addr().String()
}

// tapCopy copies src to dst and logs each KISS frame that passes.
func tapCopy(dst io.WriteCloser, src io.ReadCloser, dir string, logLine func(string)) {
	defer dst.Close()
	defer src.Close()
	pr, pw := io.Pipe()
	go func() {
		parts := map[string][][]byte{}
		dec := kiss.NewDecoder(pr, kiss.DefaultMaxFrame)
		for {
			f, err := dec.Next()
			if err != nil {
				if err == io.EOF || err == io.ErrClosedPipe {
					return
				}
				continue
			}
			if f.Command != kiss.CmdData {
				logLine(fmt.Sprintf("%s kiss command %d %x", dir, f.Command, f.Data))
				continue
			}
			fcs := ax25.FCS(f.Data)
			fr, err := ax25.Decode(append(f.Data, byte(fcs), byte(fcs>>8)))
			if err != nil {
				logLine(fmt.Sprintf("%s bad frame: %v", dir, err))
				continue
			}
			info := fr.Info
			if len(info) < 5 || info[0] != 'S' {
				logLine(fmt.Sprintf("%s %s>%s %q", dir, fr.Src, fr.Dst, info))
				continue
			}
			num, idx, cnt := binary.BigEndian.Uint16(info[2:4]), int(info[4]>>4), int(info[4]&15)+1
			logLine(fmt.Sprintf("%s %s>%s dgram %d frag %d/%d %d bytes", dir, fr.Src, fr.Dst, num, idx+1, cnt, len(info)))
			key := fmt.Sprintf("%s/%d", fr.Src, num)
			p := parts[key]
			if p == nil {
				p = make([][]byte, cnt)
				parts[key] = p
			}
			if idx < len(p) {
				p[idx] = append([]byte(nil), info[5:]...)
			}
			whole := true
			var d []byte
			for _, x := range p {
				whole = whole && x != nil
				d = append(d, x...)
			}
			if whole {
				delete(parts, key)
				logLine(fmt.Sprintf("%s   dgram %d whole: %s", dir, num, describeLink(d)))
			}
		}
	}()
	_, _ = io.Copy(io.MultiWriter(dst, pw), src)
	pw.Close()
}

// describeLink names what a link datagram carries: for a clear session's
// data, the router frames inside (type:length), else the link message type.
func describeLink(d []byte) string {
	if len(d) == 0 {
		return "empty"
	}
	switch d[0] {
	case 4:
		return fmt.Sprintf("ClearInit %d bytes", len(d))
	case 5:
		return fmt.Sprintf("ClearResp %d bytes", len(d))
	case 6:
	default:
		return fmt.Sprintf("link type %d, %d bytes", d[0], len(d))
	}
	const sig = 65
	if len(d) < 16+1+sig {
		return fmt.Sprintf("short ClearData %d bytes", len(d))
	}
	pt := d[16 : len(d)-sig]
	return fmt.Sprintf("ClearData %d bytes, kind %d, frames %s", len(d), pt[0], describeFrames(pt[1:]))
}

// describeFrames names the router frames in body.
func describeFrames(body []byte) string {
	names := map[byte]string{1: "data", 2: "setup", 3: "confirm", 4: "setupfail", 5: "routeerr", 6: "teardown", 7: "keepalive", 8: "gossip", 9: "ping", 10: "pong", 11: "back", 14: "credit", 15: "datart"}
	var fs []string
	for len(body) >= 3 {
		typ, n := body[0], int(binary.BigEndian.Uint16(body[1:3]))
		if 3+n > len(body) {
			break
		}
		name := names[typ]
		if name == "" {
			name = fmt.Sprintf("type%d", typ)
		}
		fb := body[3 : 3+n]
		switch {
		case typ == 12 && n >= 8: // Reliable: seq | base | frames
			fs = append(fs, fmt.Sprintf("reliable(seq %d base %d: %s)", binary.BigEndian.Uint32(fb), binary.BigEndian.Uint32(fb[4:]), describeFrames(fb[8:])))
		case typ == 13 && n >= 4: // LinkAck: cum | sack
			fs = append(fs, fmt.Sprintf("linkack(cum %d)", binary.BigEndian.Uint32(fb)))
		default:
			fs = append(fs, fmt.Sprintf("%s:%d", name, n))
		}
		body = body[3+n:]
	}
	return strings.Join(fs, " ")
}
