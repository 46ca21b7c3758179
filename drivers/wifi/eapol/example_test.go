package eapol_test

import (
	"fmt"

	"github.com/skyfleet/skyfleet/drivers/wifi/eapol"
)

// A station and an access point run the 4-way handshake by passing frames
// to each other; in Skyfleet the frames travel over the radio instead.
func Example() {
	pmk, err := eapol.PMK("correct horse battery", []byte("skyfleet-mesh"))
	if err != nil {
		panic(err)
	}
	ap := [6]byte{0x02, 0, 0, 0, 0, 1}
	sta := [6]byte{0x02, 0, 0, 0, 0, 2}
	// WPA2-PSK, CCMP-128 pairwise and group cipher.
	rsne := []byte{0x30, 0x14, 0x01, 0x00, 0x00, 0x0f, 0xac, 0x04, 0x01, 0x00, 0x00, 0x0f, 0xac, 0x04,
		0x01, 0x00, 0x00, 0x0f, 0xac, 0x02, 0x00, 0x00}
	gtk := &eapol.GroupKey{Index: 1, Key: make([]byte, 16)} // use crypto/rand for a real one

	auth, err := eapol.NewAuthenticator(eapol.AuthenticatorConfig{
		PMK: pmk, AA: ap, SPA: sta, RSNE: rsne, STARSNE: rsne, GTK: gtk})
	if err != nil {
		panic(err)
	}
	supp, err := eapol.NewSupplicant(eapol.SupplicantConfig{
		PMK: pmk, SPA: sta, AA: ap, RSNE: rsne, APRSNE: rsne})
	if err != nil {
		panic(err)
	}

	msg1, _ := auth.Start()
	msg2, _, _ := supp.Handle(msg1)
	msg3, _, err := auth.Handle(msg2)
	if err != nil {
		panic(err) // errors.Is(err, eapol.ErrMICFailure): wrong passphrase
	}
	msg4, staKeys, _ := supp.Handle(msg3)
	_, apKeys, _ := auth.Handle(msg4)

	fmt.Println("same TK:", staKeys.PTK.TK == apKeys.PTK.TK)
	fmt.Println("station got GTK index", staKeys.GTK.Index)
	fmt.Println(staKeys) // safe to log: no key bytes
	// Output:
	// same TK: true
	// station got GTK index 1
	// eapol.Keys{PTK: true, GTK: eapol.GroupKey{Index: 1, Tx: false, 16 bytes redacted}}
}
