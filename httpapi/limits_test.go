package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"coco/sql/migrations"
	"coco/sql/sqltest"
)

// externalIDCases are ids the rule must get right, with the message of the
// 422 each gets ("" for a valid id).
var externalIDCases = []struct{ id, want string }{
	{"u-1", ""},
	{"*", ""},
	{"alice@example.com", ""},
	{"ünï", ""},
	{"Jos\u00e9", ""}, // NFC
	{"用户-7", ""},
	{"grandma-👵", ""},
	{"a.b", ""},
	{"...", ""},
	{strings.Repeat("u", 128), ""},
	{strings.Repeat("é", 128), ""},
	{"", errTooShort.msg},
	{strings.Repeat("u", 129), errTooLong.msg},
	{".", errIDDots.msg},
	{"..", errIDDots.msg},
	{"Jose\u0301", errIDNotNFC.msg}, // NFD spelling of José
	{"\u212b", errIDNotNFC.msg},     // ANGSTROM SIGN, whose NFC is U+00C5
	{"a/b", errIDChars.msg},
	{"a b", errIDChars.msg},
	{"a\tb", errIDChars.msg},
	{"a\u00a0b", errIDChars.msg},     // no-break space
	{"a\u200bb", errIDChars.msg},     // zero width space
	{"a\ufeffb", errIDChars.msg},     // BOM
	{"a\u202eb", errIDChars.msg},     // right-to-left override
	{"a\ufffdb", errIDChars.msg},     // replacement character
	{"a\u180eb", errIDChars.msg},     // Mongolian vowel separator
	{"a\u2060b", errIDChars.msg},     // word joiner
	{"a\u034fb", errIDChars.msg},     // combining grapheme joiner
	{"a\ufe0fb", errIDChars.msg},     // variation selector 16
	{"\u3164", errIDChars.msg},       // Hangul filler
	{"\u2800", errIDChars.msg},       // Braille blank
	{"a\uffffb", errIDChars.msg},     // noncharacter
	{"a\u0378b", errIDChars.msg},     // unassigned
	{"a\ue000b", errIDChars.msg},     // private use
	{"a\U000E0041b", errIDChars.msg}, // tag character
	{"a\u0085b", errIDChars.msg},     // next line
	{"a\u2028b", errIDChars.msg},     // line separator
}

// ValidExternalID is the ingest and dashboard rule, for callers outside the
// package; its messages are the 422's.
func TestValidExternalID(t *testing.T) {
	t.Parallel()
	for _, tc := range append(externalIDCases, struct{ id, want string }{"a\xffb", errIDChars.msg}) {
		err := ValidExternalID(tc.id)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ValidExternalID(%+q) = %v, want nil", tc.id, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("ValidExternalID(%+q) = %v, want %q", tc.id, err, tc.want)
		}
	}
}

// The users table enforces the same id rule as the API, whatever the
// database's locale: a plain INSERT takes exactly the ids the API takes.
// Checked for the cases above and for every single code point.
func TestExternalIDRuleMatchesTheDatabase(t *testing.T) {
	t.Parallel()
	for _, locale := range []string{"C", "C.UTF-8"} {
		t.Run(locale, func(t *testing.T) {
			t.Parallel()
			url := sqltest.EmptyURL(t, fmt.Sprintf("template template0 encoding 'UTF8' lc_collate '%[1]s' lc_ctype '%[1]s'", locale))
			cfg, err := pgx.ParseConfig(url)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := migrations.Migrate(t.Context(), cfg, migrations.Options{}); err != nil {
				t.Fatal(err)
			}
			conn, err := pgx.ConnectConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(t.Context())

			for _, tc := range externalIDCases {
				_, err := conn.Exec(t.Context(), `insert into users (external_id) values ($1)`, tc.id)
				if (err == nil) != (tc.want == "") {
					t.Errorf("insert external_id %+q: %v; the API says %q", tc.id, err, tc.want)
				}
			}

			// Every check constraint on users, applied to each code point
			// as a one-character id.
			var checks []string
			rows, err := conn.Query(t.Context(),
				`select pg_get_expr(conbin, conrelid) from pg_constraint where conrelid = 'users'::regclass and contype = 'c'`)
			if err != nil {
				t.Fatal(err)
			}
			checks, err = pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || len(checks) < 2 {
				t.Fatalf("check constraints on users: %q, %v; want the format and visible rules", checks, err)
			}
			var dbRanges string
			err = conn.QueryRow(t.Context(), `
				with ok as (
					select cp from generate_series(1, 1114111) cp
					cross join lateral (select chr(cp) as external_id) u
					where cp not between 55296 and 57343 and `+strings.Join(checks, " and ")+`
				), starts as (
					select cp, cp - row_number() over (order by cp) as grp from ok
				)
				select coalesce(string_agg(format('%s-%s', lo, hi), ' ' order by lo), '')
				from (select min(cp) lo, max(cp) hi from starts group by grp) r`).Scan(&dbRanges)
			if err != nil {
				t.Fatal(err)
			}
			if api := apiRanges(); dbRanges != api {
				t.Errorf("one-character ids the database takes differ from the API's:\n db %.300s\napi %.300s", dbRanges, api)
			}
		})
	}
}

// apiRanges lists the code points that validExternalID takes as a
// one-character id, as "lo-hi" decimal ranges.
func apiRanges() string {
	var out []string
	lo := rune(-1)
	for r := rune(1); r <= unicode.MaxRune+1; r++ {
		ok := r <= unicode.MaxRune && utf8.ValidRune(r) && validExternalID(string(r)) == nil
		switch {
		case ok && lo < 0:
			lo = r
		case !ok && lo >= 0:
			out = append(out, fmt.Sprintf("%d-%d", lo, r-1))
			lo = -1
		}
	}
	return strings.Join(out, " ")
}

// openAPISchema returns the named schema of openapi.json, decoded.
func openAPISchema(t *testing.T, name string) map[string]any {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	s, ok := doc.Components.Schemas[name]
	if !ok {
		t.Fatalf("openapi.json has no schema %s", name)
	}
	return s
}

// openapi.json states the limits the API enforces: the same constants.
func TestOpenAPIStatesTheLimits(t *testing.T) {
	t.Parallel()
	id := openAPISchema(t, "ExternalID")
	props := openAPISchema(t, "SessionSummary")["properties"].(map[string]any)
	field := func(name string) map[string]any { return props[name].(map[string]any) }
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"ExternalID minLength", id["minLength"], 1.0},
		{"ExternalID maxLength", id["maxLength"], float64(MaxIDChars)},
		{"session_id minLength", field("session_id")["minLength"], 1.0},
		{"session_id maxLength", field("session_id")["maxLength"], float64(MaxIDChars)},
		{"duration_seconds minimum", field("duration_seconds")["minimum"], 0.0},
		{"duration_seconds maximum", field("duration_seconds")["maximum"], float64(MaxDurationSeconds)},
		{"sentiment_score minimum", field("sentiment_score")["minimum"], MinSentiment},
		{"sentiment_score maximum", field("sentiment_score")["maximum"], MaxSentiment},
		{"TimeZone maxLength", openAPISchema(t, "TimeZone")["maxLength"], float64(MaxTimeZoneChars)},
		{"TimeZone pattern", openAPISchema(t, "TimeZone")["pattern"], zoneName.String()},
		{"DayStartsAt pattern", openAPISchema(t, "DayStartsAt")["pattern"], dayStart.String()},
	} {
		if c.got != c.want {
			t.Errorf("openapi.json %s = %v, want %v", c.what, c.got, c.want)
		}
	}
	started := field("started_at")["description"].(string)
	for _, want := range []string{minStartedAt.Format(time.RFC3339), fmt.Sprintf("%d minutes ahead", int(FutureTolerance/time.Minute))} {
		if !strings.Contains(started, want) {
			t.Errorf("openapi.json started_at description %q does not say %q", started, want)
		}
	}
	// The pattern states part of the id rule: it takes every valid id.
	pattern := regexp.MustCompile(id["pattern"].(string))
	for _, tc := range externalIDCases {
		if tc.want == "" && !pattern.MatchString(tc.id) {
			t.Errorf("openapi.json's ExternalID pattern refuses the valid id %+q", tc.id)
		}
	}
}

// The database's constraints hold the same limits as the constants: the
// largest value the API takes is stored, the next one is a check violation.
func TestDatabaseHoldsTheLimits(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	var userID string
	if err := pool.QueryRow(t.Context(), `select coco.ensure_user('limits')::text`).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	session := func(id string, secs int, score float64) error {
		_, err := pool.Exec(t.Context(), `
			insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
			values ($1, $2::uuid, now(), $3, $4)`, id, userID, secs, score)
		return err
	}
	settings := func(zone, start string) error {
		_, err := pool.Exec(t.Context(), `
			insert into user_settings (user_id, effective_from, time_zone, day_starts_at)
			values ($1::uuid, clock_timestamp(), $2, $3::interval)`, userID, zone, start)
		return err
	}
	isCheck := func(err error) bool {
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == "23514"
	}
	for _, c := range []struct {
		what       string
		err        error
		checkFails bool
	}{
		{"session_id of MaxIDChars", session(strings.Repeat("s", MaxIDChars), 60, 0.5), false},
		{"session_id of MaxIDChars+1", session(strings.Repeat("s", MaxIDChars+1), 60, 0.5), true},
		{"duration MaxDurationSeconds", session("d1", MaxDurationSeconds, 0.5), false},
		{"duration MaxDurationSeconds+1", session("d2", MaxDurationSeconds+1, 0.5), true},
		{"duration below 0", session("d3", -1, 0.5), true},
		{"sentiment MaxSentiment", session("s1", 60, MaxSentiment), false},
		{"sentiment above MaxSentiment", session("s2", 60, MaxSentiment+0.01), true},
		{"sentiment below MinSentiment", session("s3", 60, MinSentiment-0.01), true},
		{"day start MaxDayStartsAt", settings("UTC", MaxDayStartsAt), false},
		{"day start a minute later", settings("UTC", "12:01"), true},
		// A zone of MaxTimeZoneChars passes the length check (and fails
		// later, as no zone has that name); one more does not.
		{"zone of MaxTimeZoneChars+1", settings(strings.Repeat("Z", MaxTimeZoneChars+1), "00:00"), true},
		{"zone of MaxTimeZoneChars", settings(strings.Repeat("Z", MaxTimeZoneChars), "00:00"), false},
	} {
		if got := isCheck(c.err); got != c.checkFails {
			t.Errorf("%s: %v; want a check violation: %t", c.what, c.err, c.checkFails)
		}
	}
}
