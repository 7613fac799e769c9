package httpapi

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The limits of what coco accepts, each written once. The database's
// constraints enforce the same (migrations 001 and 003) and openapi.json
// states them; tests hold all three to these values.
const (
	// MaxIDChars bounds session ids and external user ids, in characters.
	MaxIDChars = 128
	// MaxDurationSeconds is one day: a longer session is a device bug.
	MaxDurationSeconds = 86400
	// MinSentiment and MaxSentiment bound sentiment_score.
	MinSentiment = 0.0
	MaxSentiment = 1.0
	// FutureTolerance is how far a device's clock may run ahead of ours:
	// started_at may be up to this much after now; more is a wrong clock.
	FutureTolerance = 5 * time.Minute
	// MaxTimeZoneChars bounds a time zone name (the longest IANA name has 32).
	MaxTimeZoneChars = 64
	// MaxDayStartsAt is the latest a family's day may start: noon, so that a
	// day is never mostly the calendar's next one.
	MaxDayStartsAt = "12:00"
	// MaxBatchSessions bounds the items of a batch ingest.
	MaxBatchSessions = 1000
	// maxBodyBytes bounds an ingest body, maxBatchBytes a batch's (both
	// decompressed).
	maxBodyBytes  = 64 << 10
	maxBatchBytes = 1 << 20
)

// minStartedAt is the earliest plausible started_at: an earlier year is a
// device whose clock was reset, and its data would only pollute the rollups.
var minStartedAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	errTooShort = &problem{"string_too_short", "String should have at least 1 character"}
	errTooLong  = &problem{"string_too_long", fmt.Sprintf("String should have at most %d characters", MaxIDChars)}
	errIDChars  = &problem{"string_pattern_mismatch",
		"String should hold only visible characters: no '/', spaces, control, format, private-use, unassigned or invisible characters"}
	errIDNotNFC = &problem{"string_pattern_mismatch",
		"String should be in Unicode NFC form (composed characters, such as é as one code point): normalize it to NFC"}
	errIDDots = &problem{"string_pattern_mismatch", "String should not be '.' or '..'"}
)

// ValidExternalID checks a user's external id as the API does for ingest
// bodies and dashboard URLs, for configuration and commands that name users.
// The error's message is the one a 422 gives.
func ValidExternalID(s string) error {
	if p := validExternalID(s); p != nil {
		return errors.New(p.msg)
	}
	return nil
}

// validExternalID checks a user's external id: 1 to MaxIDChars characters
// of externalIDChars (assigned and visible; see gen_idchars.go), in Unicode
// NFC, and neither "." nor "..". An id must fit in one URL path segment
// that browsers keep as it is, and read the same in logs and psql; one user
// must have one spelling. The users table checks the same rule
// (coco.valid_external_id).
func validExternalID(s string) *problem {
	if p := checkLength(s); p != nil {
		return p
	}
	if s == "." || s == ".." {
		return errIDDots
	}
	for _, r := range s {
		// Invalid UTF-8 decodes as U+FFFD, which the table leaves out.
		if !unicode.Is(externalIDChars, r) {
			return errIDChars
		}
	}
	if !norm.NFC.IsNormalString(s) {
		return errIDNotNFC
	}
	return nil
}

func checkLength(s string) *problem {
	switch n := utf8.RuneCountInString(s); {
	case n < 1:
		return errTooShort
	case n > MaxIDChars:
		return errTooLong
	}
	return nil
}
