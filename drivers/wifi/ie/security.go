package ie

import (
	"errors"
	"slices"
)

// Security is a one-word summary of how a BSS protects its traffic, for a
// scan listing ("wpa2-psk"). It is derived, not a field of any frame.
type Security string

// The summaries Summarize returns.
const (
	SecurityOpen     Security = "open"          // no Privacy bit, no RSN or WPA element
	SecurityWEP      Security = "wep"           // Privacy bit without RSN or WPA element
	SecurityWPA1     Security = "wpa1"          // only the WPA1 vendor element, any AKM
	SecurityWPA2PSK  Security = "wpa2-psk"      // RSN with PSK or PSK-SHA256 (FT-PSK included)
	SecurityWPA2EAP  Security = "wpa2-eap"      // RSN with 802.1X (FT, SHA256 included)
	SecurityWPA3SAE  Security = "wpa3-sae"      // RSN with SAE only
	SecurityWPA3Mix  Security = "wpa2-psk+sae"  // WPA3 transition mode: PSK and SAE offered
	SecurityWPA3EAP  Security = "wpa3-eap-192"  // RSN with 802.1X Suite B 192-bit
	SecurityOWE      Security = "owe"           // Opportunistic Wireless Encryption
	SecurityRSNOther Security = "rsn"           // RSN with no AKM named above
	SecurityBroken   Security = "rsn-malformed" // an RSN (or WPA) element that does not parse
)

// Summarize returns the Security of a BSS from the Privacy bit of its
// Capability Information field (IEEE 802.11-2020 §9.4.1.4: set when the BSS
// requires confidentiality; package mgmt has it as CapPrivacy) and the
// elements of its Beacon or Probe Response. The RSN element wins over the
// WPA1 element when both are present (the BSS then accepts WPA2 clients),
// and the strongest AKM offered names the result.
func Summarize(privacy bool, es Elements) Security {
	r, err := es.RSN()
	if err == nil {
		return rsnSecurity(r.AKMs)
	}
	if !errors.Is(err, ErrNotFound) {
		return SecurityBroken
	}
	if _, err := es.WPA(); err == nil {
		return SecurityWPA1
	} else if !errors.Is(err, ErrNotFound) {
		return SecurityBroken
	}
	if privacy {
		return SecurityWEP
	}
	return SecurityOpen
}

func rsnSecurity(akms []AKMSuite) Security {
	has := func(s ...AKMSuite) bool {
		return slices.ContainsFunc(akms, func(a AKMSuite) bool { return slices.Contains(s, a) })
	}
	sae := has(AKMSAE, AKMFTSAE)
	psk := has(AKMPSK, AKMPSKSHA256, AKMFTPSK)
	switch {
	case sae && psk:
		return SecurityWPA3Mix
	case sae:
		return SecurityWPA3SAE
	case psk:
		return SecurityWPA2PSK
	case has(AKM8021XSuiteB192):
		return SecurityWPA3EAP
	case has(AKM8021X, AKMFT8021X, AKM8021XSHA256, AKM8021XSuiteB):
		return SecurityWPA2EAP
	case has(AKMOWE):
		return SecurityOWE
	}
	return SecurityRSNOther
}
