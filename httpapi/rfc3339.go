package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

var (
	errDateTimeType  = &problem{"datetime_type", "Input should be a valid datetime string"}
	errDateTimeParse = &problem{"datetime_parsing", "Input should be an RFC 3339 date-time with an offset, e.g. 2025-10-22T14:30:00Z"}
	errDateTimeRange = &problem{"datetime_parsing", "Input should be a valid date-time: a date or time field is out of range"}
	errNaive         = &problem{"timezone_aware", "Input should have timezone info"}
	errTooEarly      = &problem{"value_error", "Input should not be before " + minStartedAt.Format(time.RFC3339)}
	errFuture        = &problem{"value_error",
		fmt.Sprintf("Input should not be more than %d minutes in the future", int(FutureTolerance/time.Minute))}
)

// decodeStartedAt reads started_at: an RFC 3339 string with an offset,
// within the plausible range as seen from the clock reading now.
func decodeStartedAt(raw json.RawMessage, now time.Time) (time.Time, *problem) {
	if len(raw) == 0 || raw[0] != '"' {
		return time.Time{}, errDateTimeType
	}
	s, p := decodeString(raw)
	if p != nil {
		return time.Time{}, errDateTimeType
	}
	t, p := parseRFC3339(s)
	switch {
	case p != nil:
		return time.Time{}, p
	case t.Before(minStartedAt):
		return time.Time{}, errTooEarly
	case t.After(now.Add(FutureTolerance)):
		return time.Time{}, errFuture
	}
	return t, nil
}

// parseRFC3339 accepts RFC 3339's date-time: YYYY-MM-DD, then T (or t, or a
// space as RFC 3339 section 5.6 allows and Python's str(datetime) writes),
// hh:mm:ss, an optional fraction of 1 to 9 digits, and Z, z or ±hh:mm with
// hh <= 23 and mm <= 59. time.Parse alone is laxer: it reads "+05:60" as
// +06:00 and accepts a comma before the fraction.
func parseRFC3339(s string) (time.Time, *problem) {
	shape := "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(shape) {
		return time.Time{}, errDateTimeParse
	}
	for i := 0; i < len(shape); i++ {
		c := s[i]
		switch shape[i] {
		case 'd':
			if c < '0' || c > '9' {
				return time.Time{}, errDateTimeParse
			}
		case 'T':
			if c != 'T' && c != 't' && c != ' ' {
				return time.Time{}, errDateTimeParse
			}
		default:
			if c != shape[i] {
				return time.Time{}, errDateTimeParse
			}
		}
	}
	rest := s[len(shape):]
	fraction := ""
	if strings.HasPrefix(rest, ".") {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return time.Time{}, errDateTimeParse
		}
		fraction, rest = rest[:n], rest[n:]
	}
	var zone string
	switch {
	case rest == "":
		return time.Time{}, errNaive
	case rest == "Z" || rest == "z":
		zone = "Z"
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		isDigits(rest[1:3]) && isDigits(rest[4:6]) && rest[1:3] <= "23" && rest[4:6] <= "59":
		zone = rest
	default:
		return time.Time{}, errDateTimeParse
	}
	// The shape is right; time.Parse checks the ranges (month 13, Feb 30,
	// hour 24, second 60 are all refused).
	t, err := time.Parse(time.RFC3339Nano, s[:10]+"T"+s[11:len(shape)]+fraction+zone)
	if err != nil {
		return time.Time{}, errDateTimeRange
	}
	return t, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
