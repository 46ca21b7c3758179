package mgmt

import "fmt"

// StatusCode is the Status Code field of Authentication and (Re)Association
// Response frames (IEEE 802.11-2020 §9.4.1.9): 0 is success.
type StatusCode uint16

// Common status codes (IEEE 802.11-2020 §9.4.1.9).
const (
	StatusSuccess                   StatusCode = 0
	StatusUnspecifiedFailure        StatusCode = 1
	StatusCapsUnsupported           StatusCode = 10
	StatusReassocNoAssoc            StatusCode = 11
	StatusAssocDeniedUnspec         StatusCode = 12
	StatusNotSupportedAuthAlg       StatusCode = 13
	StatusUnknownAuthTransaction    StatusCode = 14
	StatusChallengeFail             StatusCode = 15
	StatusAuthTimeout               StatusCode = 16
	StatusAPUnableToHandleNewSTA    StatusCode = 17
	StatusAssocDeniedRates          StatusCode = 18
	StatusAssocRejectedTemporarily  StatusCode = 30
	StatusRobustMgmtPolicyViolation StatusCode = 31
	StatusInvalidElement            StatusCode = 40
	StatusInvalidGroupCipher        StatusCode = 41
	StatusInvalidPairwiseCipher     StatusCode = 42
	StatusInvalidAKMP               StatusCode = 43
	StatusUnsupportedRSNVersion     StatusCode = 44
	StatusInvalidRSNCapabilities    StatusCode = 45
	StatusCipherRejectedPerPolicy   StatusCode = 46
	StatusInvalidPMKID              StatusCode = 53
	StatusAntiCloggingTokenRequired StatusCode = 76
	StatusFiniteCyclicGroupUnsupp   StatusCode = 77
)

var statusNames = map[StatusCode]string{
	StatusSuccess:                   "success",
	StatusUnspecifiedFailure:        "unspecified failure",
	StatusCapsUnsupported:           "cannot support all requested capabilities",
	StatusReassocNoAssoc:            "reassociation denied: no existing association",
	StatusAssocDeniedUnspec:         "association denied for a reason outside the standard",
	StatusNotSupportedAuthAlg:       "authentication algorithm not supported",
	StatusUnknownAuthTransaction:    "authentication transaction sequence number out of sequence",
	StatusChallengeFail:             "challenge failure",
	StatusAuthTimeout:               "authentication timeout",
	StatusAPUnableToHandleNewSTA:    "AP unable to handle additional associated STAs",
	StatusAssocDeniedRates:          "basic rates not supported",
	StatusAssocRejectedTemporarily:  "association rejected temporarily, try again later",
	StatusRobustMgmtPolicyViolation: "robust management frame policy violation",
	StatusInvalidElement:            "invalid element",
	StatusInvalidGroupCipher:        "invalid group cipher",
	StatusInvalidPairwiseCipher:     "invalid pairwise cipher",
	StatusInvalidAKMP:               "invalid AKMP",
	StatusUnsupportedRSNVersion:     "unsupported RSNE version",
	StatusInvalidRSNCapabilities:    "invalid RSNE capabilities",
	StatusCipherRejectedPerPolicy:   "cipher suite rejected because of security policy",
	StatusInvalidPMKID:              "invalid PMKID",
	StatusAntiCloggingTokenRequired: "anti-clogging token required",
	StatusFiniteCyclicGroupUnsupp:   "finite cyclic group not supported",
}

// String names the status and gives its number: "invalid AKMP (43)".
func (s StatusCode) String() string {
	if n, ok := statusNames[s]; ok {
		return fmt.Sprintf("%s (%d)", n, uint16(s))
	}
	return fmt.Sprintf("status %d", uint16(s))
}

// ReasonCode is the Reason Code field of Deauthentication and Disassociation
// frames (IEEE 802.11-2020 §9.4.1.7).
type ReasonCode uint16

// Common reason codes (IEEE 802.11-2020 §9.4.1.7).
const (
	ReasonUnspecified             ReasonCode = 1
	ReasonPrevAuthNotValid        ReasonCode = 2
	ReasonDeauthLeaving           ReasonCode = 3
	ReasonInactivity              ReasonCode = 4
	ReasonAPBusy                  ReasonCode = 5
	ReasonClass2FromNonauth       ReasonCode = 6
	ReasonClass3FromNonassoc      ReasonCode = 7
	ReasonDisassocLeaving         ReasonCode = 8
	ReasonNotAuthenticated        ReasonCode = 9
	ReasonInvalidElement          ReasonCode = 13
	ReasonMICFailure              ReasonCode = 14
	Reason4WayHandshakeTimeout    ReasonCode = 15
	ReasonGroupKeyTimeout         ReasonCode = 16
	ReasonHandshakeElementDiffers ReasonCode = 17
	ReasonInvalidGroupCipher      ReasonCode = 18
	ReasonInvalidPairwiseCipher   ReasonCode = 19
	ReasonInvalidAKMP             ReasonCode = 20
	ReasonUnsupportedRSNVersion   ReasonCode = 21
	ReasonInvalidRSNCapabilities  ReasonCode = 22
	Reason8021XAuthFailed         ReasonCode = 23
	ReasonCipherRejected          ReasonCode = 24
)

var reasonNames = map[ReasonCode]string{
	ReasonUnspecified:             "unspecified reason",
	ReasonPrevAuthNotValid:        "previous authentication no longer valid",
	ReasonDeauthLeaving:           "deauthenticated because sending STA is leaving",
	ReasonInactivity:              "disassociated due to inactivity",
	ReasonAPBusy:                  "disassociated because AP is unable to handle all associated STAs",
	ReasonClass2FromNonauth:       "class 2 frame received from nonauthenticated STA",
	ReasonClass3FromNonassoc:      "class 3 frame received from nonassociated STA",
	ReasonDisassocLeaving:         "disassociated because sending STA is leaving the BSS",
	ReasonNotAuthenticated:        "STA requesting association is not authenticated",
	ReasonInvalidElement:          "invalid element",
	ReasonMICFailure:              "message integrity code failure",
	Reason4WayHandshakeTimeout:    "4-way handshake timeout",
	ReasonGroupKeyTimeout:         "group key handshake timeout",
	ReasonHandshakeElementDiffers: "element in 4-way handshake differs from association request or beacon",
	ReasonInvalidGroupCipher:      "invalid group cipher",
	ReasonInvalidPairwiseCipher:   "invalid pairwise cipher",
	ReasonInvalidAKMP:             "invalid AKMP",
	ReasonUnsupportedRSNVersion:   "unsupported RSNE version",
	ReasonInvalidRSNCapabilities:  "invalid RSNE capabilities",
	Reason8021XAuthFailed:         "IEEE 802.1X authentication failed",
	ReasonCipherRejected:          "cipher suite rejected because of security policy",
}

// String names the reason and gives its number: "4-way handshake timeout (15)".
func (r ReasonCode) String() string {
	if n, ok := reasonNames[r]; ok {
		return fmt.Sprintf("%s (%d)", n, uint16(r))
	}
	return fmt.Sprintf("reason %d", uint16(r))
}
