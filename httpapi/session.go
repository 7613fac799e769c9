package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"coco/sql/store"
)

// The session summary's fields in the contract's order, which is also the
// order of their errors. All are required but time_zone.
const (
	fieldSessionID       = "session_id"
	fieldUserExternalID  = "user_external_id"
	fieldStartedAt       = "started_at"
	fieldDurationSeconds = "duration_seconds"
	fieldSentimentScore  = "sentiment_score"
	fieldTimeZone        = "time_zone"
)

var summaryFields = []string{fieldSessionID, fieldUserExternalID, fieldStartedAt, fieldDurationSeconds, fieldSentimentScore, fieldTimeZone}

// bodyLoc is where the fields of a single ingest body are.
var bodyLoc = []any{"body"}

// decodeSessionSummary parses and validates an ingest body against the
// clock reading now. On failure the error is a validationErrors naming every
// problem, and the returned Session holds the fields that were valid (so the
// request log can name the user even when another field is wrong).
func decodeSessionSummary(body []byte, now time.Time) (store.Session, error) {
	values, errs := readObject(body, bodyLoc, summaryFields, ignoreExtra)
	if values == nil {
		return store.Session{}, errs
	}
	s, fieldErrs := sessionFromFields(values, now, bodyLoc)
	errs = append(errs, fieldErrs...)
	if len(errs) > 0 {
		return s, errs
	}
	return s, nil
}

// sessionFromFields validates the raw values of a session summary found at
// loc. It returns the valid fields, and an error for each invalid or
// missing one.
func sessionFromFields(values map[string]json.RawMessage, now time.Time, loc []any) (store.Session, validationErrors) {
	var s store.Session
	var errs validationErrors
	for _, name := range summaryFields {
		raw, ok := values[name]
		if !ok || string(raw) == "null" {
			// A null is reported as missing.
			if name != fieldTimeZone {
				errs = append(errs, errMissing.at(loc, name))
			}
			continue
		}
		var p *problem
		switch name {
		case fieldSessionID:
			s.SessionID, p = decodeSessionID(raw)
		case fieldUserExternalID:
			s.UserExternalID, p = decodeExternalID(raw)
		case fieldStartedAt:
			s.StartedAt, p = decodeStartedAt(raw, now)
		case fieldDurationSeconds:
			s.DurationSeconds, p = decodeDuration(raw)
		case fieldSentimentScore:
			s.SentimentScore, p = decodeSentiment(raw)
		case fieldTimeZone:
			s.TimeZone, p = decodeTimeZone(raw)
		}
		if p != nil {
			errs = append(errs, p.at(loc, name))
		}
	}
	return s, errs
}

var (
	errStringType = &problem{"string_type", "Input should be a valid string"}
	errSurrogate  = &problem{"string_unicode", "Input should be a valid string: it contains an unpaired UTF-16 surrogate escape"}
	errNUL        = &problem{"string_pattern_mismatch", "String should not contain NUL characters"}
)

// decodeString unquotes a JSON string. encoding/json turns an unpaired
// surrogate escape such as "\ud800" into U+FFFD, so two different ids could
// become one; such strings are refused instead.
func decodeString(raw json.RawMessage) (string, *problem) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", errStringType
	}
	if hasLoneSurrogate(raw) {
		return "", errSurrogate
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errStringType
	}
	return s, nil
}

// hasLoneSurrogate reports whether the JSON string literal raw has a \uXXXX
// escape in the surrogate range that is not part of a high-low pair.
func hasLoneSurrogate(raw []byte) bool {
	escape := func(i int) (rune, bool) { // the \uXXXX escape at raw[i:], if any
		if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		return rune(v), err == nil
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		r, ok := escape(i)
		if !ok {
			i++ // skip the escaped character, e.g. the second \ of \\u
			continue
		}
		switch {
		case 0xD800 <= r && r < 0xDC00:
			low, ok := escape(i + 6)
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return true
			}
			i += 11
		case 0xDC00 <= r && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}

func decodeSessionID(raw json.RawMessage) (string, *problem) {
	s, p := decodeString(raw)
	if p != nil {
		return "", p
	}
	if p := checkLength(s); p != nil {
		return "", p
	}
	// PostgreSQL text cannot hold NUL; letting it through would be a 500.
	if strings.ContainsRune(s, 0) {
		return "", errNUL
	}
	return s, nil
}

func decodeExternalID(raw json.RawMessage) (string, *problem) {
	s, p := decodeString(raw)
	if p != nil {
		return "", p
	}
	if p := validExternalID(s); p != nil {
		return "", p
	}
	return s, nil
}

var (
	errIntType      = &problem{"int_type", "Input should be a valid integer"}
	errIntFraction  = &problem{"int_from_float", "Input should be a valid integer, got a number with a fractional part"}
	errDurationLow  = &problem{"greater_than_equal", "Input should be greater than or equal to 0"}
	errDurationHigh = &problem{"less_than_equal", fmt.Sprintf("Input should be less than or equal to %d", MaxDurationSeconds)}
	errFloatType    = &problem{"float_type", "Input should be a valid number"}
	errFinite       = &problem{"finite_number", "Input should be a finite number"}
	errScoreLow     = &problem{"greater_than_equal", fmt.Sprintf("Input should be greater than or equal to %g", MinSentiment)}
	errScoreHigh    = &problem{"less_than_equal", fmt.Sprintf("Input should be less than or equal to %g", MaxSentiment)}
)

func isNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

// decodeDuration accepts a JSON number with an integral value: 720, and also
// 720.0 or 7.2e2, which Python clients of the original service send (FastAPI
// took them); 720.5 is refused rather than rounded, since a device sending
// it has a bug worth hearing about.
func decodeDuration(raw json.RawMessage) (int, *problem) {
	if !isNumber(raw) {
		return 0, errIntType
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	switch {
	case err != nil && !math.IsInf(f, 0):
		return 0, errIntType
	case f != math.Trunc(f) && !math.IsInf(f, 0):
		return 0, errIntFraction
	case f < 0:
		return 0, errDurationLow
	case f > MaxDurationSeconds:
		return 0, errDurationHigh
	}
	return int(f), nil
}

// decodeSentiment accepts any JSON number from 0 to 1. JSON has no NaN or
// Infinity literals (they are syntax errors), but 1e999 overflows float64 to
// infinity and is refused as non-finite.
func decodeSentiment(raw json.RawMessage) (float64, *problem) {
	if !isNumber(raw) {
		return 0, errFloatType
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	switch {
	case math.IsInf(f, 0) || math.IsNaN(f):
		return 0, errFinite
	case err != nil:
		return 0, errFloatType
	case f < MinSentiment:
		return 0, errScoreLow
	case f > MaxSentiment:
		return 0, errScoreHigh
	}
	if f == 0 {
		f = 0 // -0 is a valid JSON number; store it as 0
	}
	return f, nil
}
