// Package eapol is the IEEE 802.11 RSNA key machinery for WPA2-PSK in pure
// Go: passphrase to PMK (IEEE 802.11-2020 Annex J.4), the pairwise key
// hierarchy (§12.7.1.3), EAPOL-Key frames (IEEE 802.1X-2004 §7.5,
// IEEE 802.11-2020 §12.7.2), AES key wrap (RFC 3394), AES-CMAC (RFC 4493),
// and the 4-way (§12.7.6) and group key (§12.7.7) handshakes for both
// sides, as a Supplicant (station) and an Authenticator (access point).
//
// It never touches a socket: frames come in as the bytes of an EAPOL PDU
// (from the EAPOL protocol version byte on, without the Ethernet or 802.11
// header), and frames and keys to install go out. The caller owns the
// transport, the timers (Authenticator.Retry) and the installation of keys
// into the driver.
//
// Only the AKMs whose EAPOL-Key frames use key descriptor version 2 are run
// by the state machines: WPA2-PSK (AKM 00-0F-AC:2) and 802.1X (00-0F-AC:1),
// with CCMP-128. Version 3 (AES-128-CMAC) MICs can be computed and checked
// with ComputeMIC and VerifyMIC, but the SHA-256 key derivation that goes
// with it (AKM 00-0F-AC:6) is not here, nor are TKIP, WPA1 (descriptor 254),
// SAE/WPA3, FT or PMKSA caching.
//
// No error string, and no String or GoString of a key type, contains key
// material: keys are redacted so a log line cannot leak them.
package eapol
