// Package sta joins a Wi-Fi network as a station: it asks the kernel to
// associate (drivers/wifi/nl80211), runs the WPA2 4-way handshake with
// Skyfleet's own supplicant (drivers/wifi/eapol) over an EAPOL packet
// socket unless the firmware offloads it, installs the keys and opens the
// port, then answers group-key rekeys for as long as the association lasts.
//
// Which network to join, when to give up and when to rejoin is the
// caller's policy (services/wifi); Join does one attempt.
package sta

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/mdlayher/packet"

	"github.com/skyfleet/skyfleet/drivers/wifi/eapol"
	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
)

// Driver is what a station needs of the kernel; *nl80211.Conn has it.
type Driver interface {
	Connect(ifindex int, p nl80211.ConnectParams) error
	Disconnect(ifindex int, reason uint16) error
	NewKey(ifindex int, k nl80211.Key) error
	AuthorizeStation(ifindex int, peer net.HardwareAddr) error
}

// Target is the network to join, as a scan found it.
type Target struct {
	SSID      []byte
	BSSID     net.HardwareAddr // 6 bytes: the access point chosen
	Frequency int              // MHz
	// PMK is the 32-byte pairwise master key (eapol.PMK of the passphrase
	// and SSID); nil for an open network.
	PMK []byte
	// APRSNE is the access point's RSN element from its beacon or probe
	// response, whole; required with a PMK (message 3 must repeat it).
	APRSNE []byte
	// Offload hands the PMK to the firmware, which runs the handshake
	// (nl80211.PHY.OffloadSTA4Way).
	Offload bool
}

// rsnePSKCCMP is the RSN element a Skyfleet station sends: version 1,
// group CCMP, pairwise CCMP, AKM PSK, no capabilities (IEEE 802.11-2020
// §9.4.2.24).
var rsnePSKCCMP = []byte{0x30, 0x14, 0x01, 0x00,
	0x00, 0x0f, 0xac, 0x04,
	0x01, 0x00, 0x00, 0x0f, 0xac, 0x04,
	0x01, 0x00, 0x00, 0x0f, 0xac, 0x02,
	0x00, 0x00}

// Errors a join ends with; each wraps into a message that says what to
// check. None holds key material.
var (
	// ErrWrongKey: the access point never sent message 3 after our message
	// 2, or said so in its deauthentication: the passphrase differs.
	ErrWrongKey = errors.New("the network did not accept our key: wrong passphrase?")
	// ErrRejected: the access point refused authentication or association.
	ErrRejected = errors.New("the access point refused the association")
	// ErrNoAnswer: the access point never answered (out of range, gone).
	ErrNoAnswer = errors.New("the access point did not answer")
	// ErrLost: the association ended (see Session.Done).
	ErrLost = errors.New("the association was lost")
)

// eapolConn is the EAPOL socket of the handshake; a *packet.Conn bound to
// EtherType 0x888e has it.
type eapolConn interface {
	ReadFrom(b []byte) (int, net.Addr, error)
	WriteTo(b []byte, addr net.Addr) (int, error)
	Close() error
}

// listenEAPOL opens the EAPOL socket on ifi (the tests put a simulated
// access point behind it).
var listenEAPOL = func(ifi *net.Interface) (eapolConn, error) {
	return packet.Listen(ifi, packet.Datagram, eapol.EtherType, nil)
}

// Session is one association, from a successful Join until Close or loss.
type Session struct {
	BSSID     net.HardwareAddr
	Frequency int
	// Joined is when the port opened; Handshake how long association plus
	// the 4-way handshake took (0 for an open network's handshake).
	Joined    time.Time
	Handshake time.Duration

	d       Driver
	ifindex int
	eap     eapolConn
	rx      chan eapFrame
	sup     *eapol.Supplicant
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	err     error
	stopped bool
}

// Join associates ifi with t, waiting for the kernel's answer on events
// (the caller feeds it the nl80211 events of ifi.Index, e.g. from one
// Events socket), and for WPA2 completes the 4-way handshake and installs
// the keys. ctx bounds the whole attempt (10-20 s is usual). On error the
// interface is left disconnected.
func Join(ctx context.Context, d Driver, ifi nl80211.Interface, t Target, events <-chan nl80211.Event) (*Session, error) {
	if len(t.BSSID) != 6 {
		return nil, errors.New("sta: join needs the BSSID a scan found")
	}
	start := time.Now()
	s := &Session{BSSID: t.BSSID, Frequency: t.Frequency, d: d, ifindex: ifi.Index, done: make(chan struct{})}
	p := nl80211.ConnectParams{SSID: t.SSID, BSSID: t.BSSID, Frequency: t.Frequency}
	if t.PMK != nil {
		if len(t.APRSNE) < 2 && !t.Offload {
			return nil, errors.New("sta: a protected network needs the access point's RSN element from the scan")
		}
		p.RSN = &nl80211.RSN{Pairwise: nl80211.CipherCCMP, Group: nl80211.CipherCCMP, AKM: nl80211.AKMPSK, IE: rsnePSKCCMP}
		if t.Offload {
			p.RSN.PMK = t.PMK
		} else {
			var aa, spa [6]byte
			copy(aa[:], t.BSSID)
			copy(spa[:], ifi.MAC)
			sup, err := eapol.NewSupplicant(eapol.SupplicantConfig{PMK: t.PMK, SPA: spa, AA: aa, RSNE: rsnePSKCCMP, APRSNE: t.APRSNE})
			if err != nil {
				return nil, fmt.Errorf("sta: %w", err)
			}
			s.sup = sup
			// Open the EAPOL socket before associating: message 1 follows
			// the association response within milliseconds.
			eap, err := listenEAPOL(&net.Interface{Index: ifi.Index, Name: ifi.Name, HardwareAddr: ifi.MAC})
			if err != nil {
				return nil, fmt.Errorf("sta: EAPOL socket on %s: %w", ifi.Name, err)
			}
			s.eap = eap
			s.rx = make(chan eapFrame, 8)
			go s.read()
		}
	}
	fail := func(err error) (*Session, error) {
		if s.eap != nil {
			s.eap.Close()
		}
		d.Disconnect(ifi.Index, 3) // deauthenticated because leaving
		return nil, err
	}
	if err := d.Connect(ifi.Index, p); err != nil {
		return fail(fmt.Errorf("sta: %w", err))
	}
	if err := waitConnect(ctx, events, ifi.Index); err != nil {
		return fail(err)
	}
	if s.sup != nil {
		if err := s.handshake(ctx, events); err != nil {
			return fail(err)
		}
	}
	s.Joined = time.Now()
	s.Handshake = s.Joined.Sub(start)
	if s.eap != nil {
		go s.rekeys()
	}
	go s.watch(events)
	return s, nil
}

// waitConnect waits for the CONNECT result of ifindex.
func waitConnect(ctx context.Context, events <-chan nl80211.Event, ifindex int) error {
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("sta: association: %w (%v)", ErrNoAnswer, ctx.Err())
		case ev := <-events:
			if ev.Ifindex != ifindex {
				continue
			}
			switch ev.Kind {
			case nl80211.EventConnect:
				if ev.Status == 0 {
					return nil
				}
				if ev.TimedOut {
					return fmt.Errorf("sta: %w", ErrNoAnswer)
				}
				return fmt.Errorf("sta: %w (status %d)", ErrRejected, ev.Status)
			case nl80211.EventDisconnect:
				return fmt.Errorf("sta: %w (reason %d)", ErrRejected, ev.Reason)
			}
		}
	}
}

// eapFrame is one EAPOL frame read by the session's reader.
type eapFrame struct {
	b   []byte
	src net.HardwareAddr
}

// read is the session's only reader of the EAPOL socket: the handshake and
// then the rekeys take frames from s.rx. It ends when the socket is closed.
func (s *Session) read() {
	defer close(s.rx)
	for {
		buf := make([]byte, 2048)
		n, addr, err := s.eap.ReadFrom(buf)
		if err != nil {
			return
		}
		a, ok := addr.(*packet.Addr)
		if !ok || a == nil || !macEqual(a.HardwareAddr, s.BSSID) {
			continue // not from our AP: ignored, never answered
		}
		select {
		case s.rx <- eapFrame{buf[:n], a.HardwareAddr}:
		default:
			// The handshake is behind: drop, as a full radio queue would;
			// the AP retransmits.
		}
	}
}

// handshake runs the 4-way handshake until the keys are in and the port open.
func (s *Session) handshake(ctx context.Context, events <-chan nl80211.Event) error {
	sentM2 := false
	for {
		select {
		case <-ctx.Done():
			if sentM2 {
				return fmt.Errorf("sta: 4-way handshake: %w", ErrWrongKey)
			}
			return fmt.Errorf("sta: 4-way handshake: no message 1 from the access point: %w", ErrNoAnswer)
		case ev := <-events:
			if ev.Ifindex == s.ifindex && ev.Kind == nl80211.EventDisconnect {
				if sentM2 {
					return fmt.Errorf("sta: 4-way handshake (reason %d): %w", ev.Reason, ErrWrongKey)
				}
				return fmt.Errorf("sta: 4-way handshake: %w (reason %d)", ErrLost, ev.Reason)
			}
		case f, ok := <-s.rx:
			if !ok {
				return fmt.Errorf("sta: 4-way handshake: the EAPOL socket closed")
			}
			reply, keys, err := s.sup.Handle(f.b)
			if err != nil {
				// A frame that fails its checks is dropped; the AP retries.
				continue
			}
			if reply != nil {
				if _, err := s.eap.WriteTo(reply, &packet.Addr{HardwareAddr: s.BSSID}); err != nil {
					return fmt.Errorf("sta: sending EAPOL-Key: %w", err)
				}
				sentM2 = true
			}
			if keys != nil && keys.PTK != nil {
				if err := s.install(keys); err != nil {
					return err
				}
				return s.d.AuthorizeStation(s.ifindex, s.BSSID)
			}
		}
	}
}

// install puts the handshake's keys into the driver.
func (s *Session) install(keys *eapol.Keys) error {
	if keys.PTK != nil {
		tk := keys.PTK.TK
		if err := s.d.NewKey(s.ifindex, nl80211.Key{Index: 0, Cipher: nl80211.CipherCCMP, Data: tk[:], Pairwise: true, Peer: s.BSSID}); err != nil {
			return fmt.Errorf("sta: installing the pairwise key: %w", err)
		}
	}
	if g := keys.GTK; g != nil {
		if err := s.d.NewKey(s.ifindex, nl80211.Key{Index: g.Index, Cipher: nl80211.CipherCCMP, Data: g.Key, RSC: g.RSC[:6]}); err != nil {
			return fmt.Errorf("sta: installing the group key: %w", err)
		}
	}
	return nil
}

// rekeys answers group key handshakes until the session ends.
func (s *Session) rekeys() {
	for f := range s.rx {
		reply, keys, err := s.sup.Handle(f.b)
		if err != nil {
			continue
		}
		if keys != nil {
			if err := s.install(keys); err != nil {
				s.end(err)
				return
			}
		}
		if reply != nil {
			s.eap.WriteTo(reply, &packet.Addr{HardwareAddr: s.BSSID})
		}
	}
}

// watch ends the session when the kernel reports the link gone.
func (s *Session) watch(events <-chan nl80211.Event) {
	for {
		select {
		case <-s.done:
			return
		case ev, ok := <-events:
			if !ok {
				s.end(fmt.Errorf("sta: %w: event stream closed", ErrLost))
				return
			}
			if ev.Ifindex == s.ifindex && ev.Kind == nl80211.EventDisconnect {
				s.end(fmt.Errorf("sta: %w (reason %d, by AP %t)", ErrLost, ev.Reason, ev.ByAP))
				return
			}
			if ev.Kind == nl80211.EventDelInterface && ev.Ifindex == s.ifindex {
				s.end(fmt.Errorf("sta: %w: the interface went away", ErrLost))
				return
			}
		}
	}
}

func (s *Session) end(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		if s.eap != nil {
			s.eap.Close()
		}
		close(s.done)
	})
}

// Done is closed when the association ends; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended: wraps ErrLost, or nil after Close.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close leaves the network.
func (s *Session) Close() error {
	s.end(nil)
	return s.d.Disconnect(s.ifindex, 3)
}

func macEqual(a, b net.HardwareAddr) bool {
	return len(a) == 6 && len(b) == 6 && string(a) == string(b)
}
