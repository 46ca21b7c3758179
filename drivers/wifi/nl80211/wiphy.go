package nl80211

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// PHY is one radio (wiphy) and what it can do.
type PHY struct {
	Index int    // wiphy index, the N of phyN
	Name  string // e.g. "phy0"
	// IfTypes are the interface types the radio supports.
	IfTypes []IfType
	// Ciphers are the cipher suite selectors it supports, e.g. CipherCCMP.
	Ciphers []uint32
	// Frequencies are the channels it may use now, in MHz, sorted: those
	// the regulatory domain disables are left out. NoIR lists those it may
	// not initiate radiation on (no beaconing: no AP or IBSS there).
	Frequencies []int
	NoIR        []int
	// OffloadSTA4Way is true when the firmware runs the WPA2-PSK 4-way
	// handshake of a station itself, given the PMK in CONNECT
	// (NL80211_EXT_FEATURE_4WAY_HANDSHAKE_STA_PSK; brcmfmac on the Pi).
	OffloadSTA4Way bool
	// OffloadAP4Way is the same for an access point given the PMK in
	// START_AP (NL80211_EXT_FEATURE_4WAY_HANDSHAKE_AP_PSK).
	OffloadAP4Way bool
	// APSME is true when the driver answers authentication and association
	// requests itself (NL80211_ATTR_DEVICE_AP_SME, brcmfmac); when false,
	// as with mac80211 drivers, user space must (see Frames).
	APSME bool
}

// Supports reports whether the radio supports interface type t.
func (p PHY) Supports(t IfType) bool {
	for _, x := range p.IfTypes {
		if x == t {
			return true
		}
	}
	return false
}

// Cipher suite selectors (IEEE 802.11-2020 §9.4.2.24.2, OUI 00-0F-AC), as
// nl80211 carries them in a u32.
const (
	CipherCCMP uint32 = 0x000fac04 // CCMP-128, the WPA2 cipher
	CipherGCMP uint32 = 0x000fac08 // GCMP-128
	CipherTKIP uint32 = 0x000fac02 // TKIP (WPA1), never used by Skyfleet
	AKMPSK     uint32 = 0x000fac02 // AKM suite 2: PSK (WPA2-Personal)
)

// PHYs lists the radios of this network namespace with their capabilities
// (NL80211_CMD_GET_WIPHY, a split dump).
func (c *Conn) PHYs() ([]PHY, error) {
	msgs, err := c.execute(unix.NL80211_CMD_GET_WIPHY, netlink.Dump, func(ae *netlink.AttributeEncoder) {
		ae.Flag(unix.NL80211_ATTR_SPLIT_WIPHY_DUMP, true)
	})
	if err != nil {
		return nil, err
	}
	return parsePHYs(msgs)
}

// parsePHYs merges a split GET_WIPHY dump, in which one radio's attributes
// are spread over several messages, into one PHY per wiphy index.
func parsePHYs(msgs []genetlink.Message) ([]PHY, error) {
	byIndex := map[int]*PHY{}
	var order []int
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, fmt.Errorf("nl80211: wiphy: %w", err)
		}
		p := &PHY{Index: -1}
		freqs := map[int]bool{} // frequency -> NoIR
		for ad.Next() {
			switch ad.Type() {
			case unix.NL80211_ATTR_WIPHY:
				p.Index = int(ad.Uint32())
			case unix.NL80211_ATTR_WIPHY_NAME:
				p.Name = ad.String()
			case unix.NL80211_ATTR_SUPPORTED_IFTYPES:
				ad.Nested(func(nd *netlink.AttributeDecoder) error {
					for nd.Next() {
						p.IfTypes = append(p.IfTypes, IfType(nd.Type()))
					}
					return nil
				})
			case unix.NL80211_ATTR_CIPHER_SUITES:
				b := ad.Bytes()
				for i := 0; i+4 <= len(b); i += 4 {
					p.Ciphers = append(p.Ciphers, binary.NativeEndian.Uint32(b[i:]))
				}
			case unix.NL80211_ATTR_EXT_FEATURES:
				b := ad.Bytes()
				p.OffloadSTA4Way = bit(b, unix.NL80211_EXT_FEATURE_4WAY_HANDSHAKE_STA_PSK)
				p.OffloadAP4Way = bit(b, unix.NL80211_EXT_FEATURE_4WAY_HANDSHAKE_AP_PSK)
			case unix.NL80211_ATTR_DEVICE_AP_SME:
				p.APSME = true
			case unix.NL80211_ATTR_WIPHY_BANDS:
				ad.Nested(func(bands *netlink.AttributeDecoder) error {
					for bands.Next() {
						bands.Nested(func(band *netlink.AttributeDecoder) error {
							for band.Next() {
								if band.Type() == unix.NL80211_BAND_ATTR_FREQS {
									band.Nested(func(fl *netlink.AttributeDecoder) error {
										for fl.Next() {
											fl.Nested(func(f *netlink.AttributeDecoder) error {
												parseFreq(f, freqs)
												return nil
											})
										}
										return nil
									})
								}
							}
							return nil
						})
					}
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("nl80211: wiphy: %w", err)
		}
		if p.Index < 0 {
			continue
		}
		q, ok := byIndex[p.Index]
		if !ok {
			q = &PHY{Index: p.Index}
			byIndex[p.Index] = q
			order = append(order, p.Index)
		}
		merge(q, p, freqs)
	}
	out := make([]PHY, 0, len(order))
	for _, i := range order {
		p := byIndex[i]
		sort.Ints(p.Frequencies)
		sort.Ints(p.NoIR)
		out = append(out, *p)
	}
	return out, nil
}

// parseFreq reads one NL80211_FREQUENCY_ATTR_* set into freqs, leaving out
// disabled channels.
func parseFreq(f *netlink.AttributeDecoder, freqs map[int]bool) {
	var mhz int
	var disabled, noIR bool
	for f.Next() {
		switch f.Type() {
		case unix.NL80211_FREQUENCY_ATTR_FREQ:
			mhz = int(f.Uint32())
		case unix.NL80211_FREQUENCY_ATTR_DISABLED:
			disabled = true
		case unix.NL80211_FREQUENCY_ATTR_NO_IR:
			noIR = true
		}
	}
	if mhz > 0 && !disabled {
		freqs[mhz] = noIR
	}
}

// merge adds what one message of a split dump said about a radio.
func merge(q, p *PHY, freqs map[int]bool) {
	if p.Name != "" {
		q.Name = p.Name
	}
	q.IfTypes = append(q.IfTypes, p.IfTypes...)
	q.Ciphers = append(q.Ciphers, p.Ciphers...)
	q.OffloadSTA4Way = q.OffloadSTA4Way || p.OffloadSTA4Way
	q.OffloadAP4Way = q.OffloadAP4Way || p.OffloadAP4Way
	q.APSME = q.APSME || p.APSME
	for mhz, noIR := range freqs {
		q.Frequencies = append(q.Frequencies, mhz)
		if noIR {
			q.NoIR = append(q.NoIR, mhz)
		}
	}
}

// bit reports whether bit n of the little-endian bitmap b is set.
func bit(b []byte, n int) bool {
	return n/8 < len(b) && b[n/8]&(1<<(n%8)) != 0
}

// ChannelFrequency returns the centre frequency in MHz of a 2.4 GHz (1-14)
// or 5 GHz (32-177) channel number (IEEE 802.11-2020 §15.4.4.3, §17.3.8.4.2),
// or 0 for any other number.
func ChannelFrequency(ch int) int {
	switch {
	case ch == 14:
		return 2484
	case ch >= 1 && ch <= 13:
		return 2407 + 5*ch
	case ch >= 32 && ch <= 177:
		return 5000 + 5*ch
	}
	return 0
}

// FrequencyChannel is the inverse of ChannelFrequency; 0 when mhz is not a
// 2.4 or 5 GHz channel centre.
func FrequencyChannel(mhz int) int {
	switch {
	case mhz == 2484:
		return 14
	case mhz >= 2412 && mhz <= 2472 && (mhz-2407)%5 == 0:
		return (mhz - 2407) / 5
	case mhz >= 5160 && mhz <= 5885 && mhz%5 == 0:
		return (mhz - 5000) / 5
	}
	return 0
}
