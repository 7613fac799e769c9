package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	cocosql "coco/sql"
)

// The ingest body is decoded by hand, key by key, rather than with
// json.Unmarshal into a struct, because encoding/json would silently accept
// what the contract rejects: keys in another letter case ("Session_ID"),
// a key given twice (the last one wins), and text after the object.

// Limits of the session summary: a body of at most 64 KiB, ids of 1 to 128
// characters, durations of 0 to 86400 seconds (one day).
const (
	maxBodyBytes       = 64 << 10
	maxIDChars         = 128
	maxDurationSeconds = 86400
)

// fieldError is one entry of a FastAPI 422 body. Loc holds strings and, for
// JSON syntax errors, the byte offset, as FastAPI's does.
type fieldError struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

// validationErrors is a 422: every problem found in the request at once, so
// a device fixes its payload in one round trip.
type validationErrors []fieldError

func (v validationErrors) Error() string {
	return fmt.Sprintf("request validation failed (%d errors)", len(v))
}

func (v validationErrors) body() any {
	return struct {
		Detail []fieldError `json:"detail"`
	}{v}
}

// problem is what is wrong with one value, before it is given a location.
type problem struct {
	typ, msg string
}

func (p *problem) at(loc ...any) fieldError { return fieldError{Loc: loc, Msg: p.msg, Type: p.typ} }

// The session summary's fields in the contract's order, which is also the
// order of their errors.
const (
	fieldSessionID       = "session_id"
	fieldUserExternalID  = "user_external_id"
	fieldStartedAt       = "started_at"
	fieldDurationSeconds = "duration_seconds"
	fieldSentimentScore  = "sentiment_score"
)

var summaryFields = []string{fieldSessionID, fieldUserExternalID, fieldStartedAt, fieldDurationSeconds, fieldSentimentScore}

var errMissing = &problem{"missing", "Field required"}

// decodeSessionSummary parses and validates an ingest body against the
// clock reading now. On failure the error is a validationErrors naming every
// problem, and the returned Session holds the fields that were valid (so the
// request log can name the user even when another field is wrong).
func decodeSessionSummary(body []byte, now time.Time) (cocosql.Session, error) {
	var s cocosql.Session
	values, errs := splitObject(body)
	if values == nil {
		return s, errs
	}
	for _, name := range summaryFields {
		raw, ok := values[name]
		if !ok || string(raw) == "null" {
			// A null is reported as missing: none of the fields is optional.
			errs = append(errs, errMissing.at("body", name))
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
		}
		if p != nil {
			errs = append(errs, p.at("body", name))
		}
	}
	if len(errs) > 0 {
		return s, errs
	}
	return s, nil
}

// splitObject checks that body is exactly one JSON object and returns the
// raw values of the contract's fields. A nil map means the body as a whole
// was unusable; the errors then say why. Key problems (duplicates, letter
// case) come back alongside a map, so field errors are reported with them.
func splitObject(body []byte) (map[string]json.RawMessage, validationErrors) {
	if !utf8.Valid(body) {
		return nil, validationErrors{{
			Loc: []any{"body", invalidUTF8Offset(body)}, Type: "json_invalid",
			Msg: "JSON decode error: invalid UTF-8",
		}}
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, validationErrors{errMissing.at("body")}
	}
	// Validating the whole body first also rejects anything after the object.
	var syntaxErr *json.SyntaxError
	if err := json.Unmarshal(body, new(json.RawMessage)); errors.As(err, &syntaxErr) {
		return nil, validationErrors{{
			Loc: []any{"body", syntaxErrorIndex(syntaxErr, body)}, Type: "json_invalid",
			Msg: "JSON decode error: " + syntaxErr.Error(),
		}}
	} else if err != nil {
		return nil, validationErrors{{Loc: []any{"body"}, Type: "json_invalid", Msg: "JSON decode error"}}
	}
	if trimmed[0] != '{' {
		return nil, validationErrors{{
			Loc: []any{"body"}, Type: "model_attributes_type",
			Msg: "Input should be a valid dictionary or object to extract fields from",
		}}
	}

	var errs validationErrors
	values := make(map[string]json.RawMessage, len(summaryFields))
	seen := make(map[string]int)
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // the opening brace, already validated
		return nil, validationErrors{{Loc: []any{"body"}, Type: "json_invalid", Msg: "JSON decode error"}}
	}
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		var value json.RawMessage
		if err == nil && isKey {
			err = dec.Decode(&value)
		}
		if err != nil || !isKey {
			return nil, validationErrors{{Loc: []any{"body"}, Type: "json_invalid", Msg: "JSON decode error"}}
		}
		seen[key]++
		switch {
		case seen[key] == 2:
			errs = append(errs, fieldError{
				Loc: []any{"body", key}, Type: "duplicate_key",
				Msg: "Key given more than once; send each field once",
			})
		case seen[key] > 2:
			// reported once already
		case isSummaryField(key):
			values[key] = bytes.TrimSpace(value)
		default:
			if f := caseVariantOf(key); f != "" {
				errs = append(errs, fieldError{
					Loc: []any{"body", key}, Type: "extra_forbidden",
					Msg: fmt.Sprintf("Field names are case-sensitive: did you mean %q?", f),
				})
			}
			// Other unknown fields are ignored, as the contract says.
		}
	}
	return values, errs
}

// syntaxErrorIndex turns encoding/json's offset (the bytes read, including
// the offending one) into the index of the offending byte, which is what
// FastAPI reports from Python's JSONDecodeError.pos. At the end of the input
// both are the length of the body.
func syntaxErrorIndex(err *json.SyntaxError, body []byte) int64 {
	if err.Offset > 0 && err.Offset <= int64(len(body)) && !strings.Contains(err.Error(), "unexpected end") {
		return err.Offset - 1
	}
	return err.Offset
}

func isSummaryField(key string) bool {
	for _, f := range summaryFields {
		if key == f {
			return true
		}
	}
	return false
}

// caseVariantOf names the contract field that key spells in another letter
// case, or returns "".
func caseVariantOf(key string) string {
	for _, f := range summaryFields {
		if strings.EqualFold(key, f) {
			return f
		}
	}
	return ""
}

func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

var (
	errStringType = &problem{"string_type", "Input should be a valid string"}
	errSurrogate  = &problem{"string_unicode", "Input should be a valid string: it contains an unpaired UTF-16 surrogate escape"}
	errTooShort   = &problem{"string_too_short", "String should have at least 1 character"}
	errTooLong    = &problem{"string_too_long", fmt.Sprintf("String should have at most %d characters", maxIDChars)}
	errNUL        = &problem{"string_pattern_mismatch", "String should not contain NUL characters"}
	errIDChars    = &problem{"string_pattern_mismatch", "String should not contain '/', whitespace or control characters"}
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

func checkLength(s string) *problem {
	switch n := utf8.RuneCountInString(s); {
	case n < 1:
		return errTooShort
	case n > maxIDChars:
		return errTooLong
	}
	return nil
}

// ValidExternalID checks a user's external id: 1 to 128 characters, none of
// them '/', whitespace, a control character, an invisible format character
// (such as U+200B ZERO WIDTH SPACE) or U+FFFD. It is the rule the API applies
// to ingest bodies and dashboard URLs, for configuration and commands that
// name users. The error's message is the one a 422 gives.
func ValidExternalID(s string) error {
	if p := validExternalID(s); p != nil {
		return errors.New(p.msg)
	}
	return nil
}

// validExternalID checks a user's external id, from an ingest body or the
// dashboard URL. It must fit in one URL path segment and read the same in
// logs and psql, so '/', whitespace, control characters and invisible
// format characters (such as U+200B ZERO WIDTH SPACE) are refused. The users
// table has the same rule as a check constraint.
func validExternalID(s string) *problem {
	if p := checkLength(s); p != nil {
		return p
	}
	for _, r := range s {
		if r == '/' || r == utf8.RuneError || unicode.IsSpace(r) ||
			unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zs, unicode.Zl, unicode.Zp) {
			return errIDChars
		}
	}
	return nil
}

var (
	errIntType      = &problem{"int_type", "Input should be a valid integer"}
	errIntFraction  = &problem{"int_from_float", "Input should be a valid integer, got a number with a fractional part"}
	errDurationLow  = &problem{"greater_than_equal", "Input should be greater than or equal to 0"}
	errDurationHigh = &problem{"less_than_equal", fmt.Sprintf("Input should be less than or equal to %d", maxDurationSeconds)}
	errFloatType    = &problem{"float_type", "Input should be a valid number"}
	errFinite       = &problem{"finite_number", "Input should be a finite number"}
	errScoreLow     = &problem{"greater_than_equal", "Input should be greater than or equal to 0"}
	errScoreHigh    = &problem{"less_than_equal", "Input should be less than or equal to 1"}
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
	case f > maxDurationSeconds:
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
	case f < 0:
		return 0, errScoreLow
	case f > 1:
		return 0, errScoreHigh
	}
	if f == 0 {
		f = 0 // -0 is a valid JSON number; store it as 0
	}
	return f, nil
}
