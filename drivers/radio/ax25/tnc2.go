package ax25

import (
	"errors"
	"fmt"
	"strings"
)

// ErrTNC2 wraps what is wrong with a line of TNC2 monitor text.
var ErrTNC2 = errors.New("ax25: bad TNC2 line")

// TNC2 is the frame as one line of TNC2 monitor text, as Direwolf prints it:
//
//	SRC>DST,DIGI1,DIGI2*:info
//
// with "*" after the last digipeater whose H bit is set (the frame was heard
// from it). Info bytes that are not printable ASCII are written as <0xNN>, as
// Direwolf writes them; a "<" that would read as such an escape is escaped
// itself, so ParseTNC2 gives back the same bytes.
func (f *Frame) TNC2() string {
	var b strings.Builder
	b.WriteString(f.Src.String())
	b.WriteByte('>')
	b.WriteString(f.Dst.String())
	heard := -1
	for i, d := range f.Path {
		if d.CH {
			heard = i
		}
	}
	for i, d := range f.Path {
		b.WriteByte(',')
		b.WriteString(d.String())
		if i == heard {
			b.WriteByte('*')
		}
	}
	b.WriteByte(':')
	for i, c := range f.Info {
		if c < 0x20 || c >= 0x7F || c == '<' && isEscape(f.Info[i:]) {
			fmt.Fprintf(&b, "<0x%02x>", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isEscape reports whether b starts with "<0xNN>" (NN two hex digits).
func isEscape(b []byte) bool {
	return len(b) >= 6 && b[0] == '<' && b[1] == '0' && (b[2] == 'x' || b[2] == 'X') && isHex(b[3]) && isHex(b[4]) && b[5] == '>'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// ParseTNC2 reads one line of TNC2 monitor text (see Frame.TNC2) into a UI
// frame as NewUI makes it, with the H bit set on each digipeater up to the one
// marked "*". A trailing newline is dropped; <0xNN> in the info field is the
// byte NN. Errors wrap ErrTNC2 or ErrAddress, naming the part at fault.
func ParseTNC2(line string) (*Frame, error) {
	line = strings.TrimRight(line, "\r\n")
	head, info, ok := strings.Cut(line, ":")
	if !ok {
		return nil, fmt.Errorf("%w: no ':' before the info field", ErrTNC2)
	}
	src, rest, ok := strings.Cut(head, ">")
	if !ok {
		return nil, fmt.Errorf("%w: no '>' after the source", ErrTNC2)
	}
	parts := strings.Split(rest, ",")
	if len(parts)-1 > MaxDigipeaters {
		return nil, fmt.Errorf("%w: %d digipeaters (at most %d)", ErrAddress, len(parts)-1, MaxDigipeaters)
	}
	s, err := ParseAddress(src)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	d, err := ParseAddress(parts[0])
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	var path []Address
	heard := -1
	for i, p := range parts[1:] {
		if q, ok := strings.CutSuffix(p, "*"); ok {
			p, heard = q, i
		}
		a, err := ParseAddress(p)
		if err != nil {
			return nil, fmt.Errorf("digipeater %d: %w", i+1, err)
		}
		path = append(path, a)
	}
	raw := make([]byte, 0, len(info))
	for i := 0; i < len(info); i++ {
		if b := []byte(info[i:min(i+6, len(info))]); isEscape(b) {
			raw = append(raw, unhex(b[3])<<4|unhex(b[4]))
			i += 5
			continue
		}
		raw = append(raw, info[i])
	}
	if len(raw) > MaxInfo {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrInfo, len(raw), MaxInfo)
	}
	f := NewUI(d, s, path, raw)
	for i := 0; i <= heard; i++ {
		f.Path[i].CH = true
	}
	return f, nil
}
