package httpapi

import (
	"testing"
	"time"
)

func TestParseRFC3339(t *testing.T) {
	t.Parallel()
	utc := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v }
	for in, want := range map[string]time.Time{
		"2025-10-22T14:30:00Z":             utc("2025-10-22T14:30:00Z"),
		"2025-10-22t14:30:00z":             utc("2025-10-22T14:30:00Z"),
		"2025-10-22 14:30:00+00:00":        utc("2025-10-22T14:30:00Z"),
		"2025-10-22T20:00:00+05:30":        utc("2025-10-22T14:30:00Z"),
		"2025-10-22T14:30:00-00:00":        utc("2025-10-22T14:30:00Z"),
		"2025-10-22T14:30:00.5Z":           utc("2025-10-22T14:30:00.5Z"),
		"2025-10-22T14:30:00.123456789Z":   utc("2025-10-22T14:30:00.123456789Z"),
		"2024-02-29T00:00:00Z":             utc("2024-02-29T00:00:00Z"),
		"2025-10-22T14:30:00+23:59":        utc("2025-10-21T14:31:00Z"),
		"2025-10-22T14:30:00.000000-12:00": utc("2025-10-23T02:30:00Z"),
	} {
		got, p := parseRFC3339(in)
		if p != nil || !got.Equal(want) {
			t.Errorf("parseRFC3339(%q) = %v, %v; want %v", in, got, p, want)
		}
	}
	for in, want := range map[string]*problem{
		"2025-10-22T14:30:00":             errNaive,
		"2025-10-22T14:30:00.5":           errNaive,
		"2025-10-22":                      errDateTimeParse,
		"2025-10-22T14:30Z":               errDateTimeParse,
		"2025-10-22T14:30:00+05":          errDateTimeParse,
		"2025-10-22T14:30:00+0530":        errDateTimeParse,
		"2025-10-22T14:30:00+24:00":       errDateTimeParse,
		"2025-10-22T14:30:00+05:60":       errDateTimeParse,
		"2025-10-22T14:30:00 Z":           errDateTimeParse,
		"2025-10-22T14:30:00ZZ":           errDateTimeParse,
		"2025-10-22T14:30:00,5Z":          errDateTimeParse,
		"2025-10-22T14:30:00.Z":           errDateTimeParse,
		"2025-10-22T14:30:00.1234567890Z": errDateTimeParse,
		"2025-10-22_14:30:00Z":            errDateTimeParse,
		"+2025-10-22T14:30:00Z":           errDateTimeParse,
		"2025-1-22T14:30:00Z":             errDateTimeParse,
		"２０２５-10-22T14:30:00Z":            errDateTimeParse,
		"2025-02-29T00:00:00Z":            errDateTimeRange,
		"2025-04-31T00:00:00Z":            errDateTimeRange,
		"2025-00-10T00:00:00Z":            errDateTimeRange,
		"2025-10-22T25:00:00Z":            errDateTimeRange,
		"2025-10-22T14:60:00Z":            errDateTimeRange,
		"2025-10-22T14:30:60Z":            errDateTimeRange,
	} {
		if _, p := parseRFC3339(in); p != want {
			t.Errorf("parseRFC3339(%q) problem = %v, want %v", in, p, want)
		}
	}
}
