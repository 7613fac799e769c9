package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"coco/sql/store"
)

// decodeNow is the clock of the decoder tests.
var decodeNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// body builds an ingest body from a valid one: a value in replace is put in
// verbatim (raw JSON); omit drops fields.
func body(replace map[string]string, omit ...string) string {
	fields := []struct{ key, value string }{
		{"session_id", `"s-1"`},
		{"user_external_id", `"u-1"`},
		{"started_at", `"2026-03-10T10:00:00Z"`},
		{"duration_seconds", `720`},
		{"sentiment_score", `0.68`},
	}
	var parts []string
	for _, f := range fields {
		if contains(omit, f.key) {
			continue
		}
		value := f.value
		if v, ok := replace[f.key]; ok {
			value = v
		}
		parts = append(parts, `"`+f.key+`":`+value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// loc is a 422 error location, e.g. loc("body", "session_id").
func loc(parts ...any) []any { return parts }

// hostileBodies are ingest requests the service must refuse. Each names the
// status and, for a 422, the location of every error, in order.
var hostileBodies = []struct {
	name        string
	body        string
	contentType string // default application/json
	status      int
	locs        [][]any
}{
	{"empty body", ``, "", 422, [][]any{loc("body")}},
	{"whitespace body", " \n\t ", "", 422, [][]any{loc("body")}},
	{"null body", `null`, "", 422, [][]any{loc("body")}},
	{"array body", `[{"session_id":"s"}]`, "", 422, [][]any{loc("body")}},
	{"string body", `"hello"`, "", 422, [][]any{loc("body")}},
	{"number body", `42`, "", 422, [][]any{loc("body")}},
	{"unclosed object", `{`, "", 422, [][]any{loc("body", 1)}},
	{"trailing comma", `{"session_id":"a",}`, "", 422, [][]any{loc("body", 18)}},
	{"zero-width joiner in user", body(map[string]string{"user_external_id": `"a\u200db"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"single quotes", `{'session_id':'a'}`, "", 422, [][]any{loc("body", 1)}},
	{"trailing object", body(nil) + `{}`, "", 422, [][]any{loc("body", len(body(nil)))}},
	{"trailing garbage", body(nil) + ` x`, "", 422, [][]any{loc("body", len(body(nil))+1)}},
	{"two objects", body(nil) + "\n" + body(nil), "", 422, [][]any{loc("body", len(body(nil))+1)}},
	{"NaN literal", body(map[string]string{"sentiment_score": "NaN"}), "", 422, nil},
	{"Infinity literal", body(map[string]string{"sentiment_score": "Infinity"}), "", 422, nil},
	{"invalid UTF-8", `{"session_id":"a` + "\xff" + `"}`, "", 422, [][]any{loc("body", 16)}},
	{"deep nesting", `{"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, "", 422, nil},
	{"empty object", `{}`, "", 422, [][]any{
		loc("body", "session_id"), loc("body", "user_external_id"), loc("body", "started_at"),
		loc("body", "duration_seconds"), loc("body", "sentiment_score")}},
	{"all null", body(map[string]string{"session_id": "null", "user_external_id": "null", "started_at": "null", "duration_seconds": "null", "sentiment_score": "null"}), "", 422, [][]any{
		loc("body", "session_id"), loc("body", "user_external_id"), loc("body", "started_at"),
		loc("body", "duration_seconds"), loc("body", "sentiment_score")}},
	{"every field the wrong type", body(map[string]string{"session_id": "1", "user_external_id": "true", "started_at": "1700000000", "duration_seconds": `"720"`, "sentiment_score": `"0.5"`}), "", 422, [][]any{
		loc("body", "session_id"), loc("body", "user_external_id"), loc("body", "started_at"),
		loc("body", "duration_seconds"), loc("body", "sentiment_score")}},
	{"objects and arrays as values", body(map[string]string{"session_id": `{}`, "user_external_id": `["u"]`, "started_at": `{}`, "duration_seconds": `[720]`, "sentiment_score": `{}`}), "", 422, [][]any{
		loc("body", "session_id"), loc("body", "user_external_id"), loc("body", "started_at"),
		loc("body", "duration_seconds"), loc("body", "sentiment_score")}},
	{"missing one field", body(nil, "started_at"), "", 422, [][]any{loc("body", "started_at")}},
	{"case variant key", strings.Replace(body(nil), `"session_id"`, `"Session_ID"`, 1), "", 422, [][]any{
		loc("body", "Session_ID"), loc("body", "session_id")}},
	{"case variant beside the real key", strings.Replace(body(nil), `{`, `{"SENTIMENT_SCORE":0.1,`, 1), "", 422, [][]any{loc("body", "SENTIMENT_SCORE")}},
	{"duplicate key", strings.Replace(body(nil), `{`, `{"session_id":"s-0",`, 1), "", 422, [][]any{loc("body", "session_id")}},
	{"duplicate key through an escape", strings.Replace(body(nil), `{`, `{"session\u005fid":"s-1",`, 1), "", 422, [][]any{loc("body", "session_id")}},
	{"duplicate unknown key", strings.Replace(body(nil), `{`, `{"x":1,"x":2,"x":3,`, 1), "", 422, [][]any{loc("body", "x")}},
	{"duration with fraction", body(map[string]string{"duration_seconds": "1.5"}), "", 422, [][]any{loc("body", "duration_seconds")}},
	{"duration with a fraction", body(map[string]string{"duration_seconds": "720.5"}), "", 422, [][]any{loc("body", "duration_seconds")}},
	{"duration with a tiny fraction", body(map[string]string{"duration_seconds": "1e-7"}), "", 422, [][]any{loc("body", "duration_seconds")}},
	{"duration overflowing float64", body(map[string]string{"duration_seconds": "1e999"}), "", 422, [][]any{loc("body", "duration_seconds")}},
	{"duration negative", body(map[string]string{"duration_seconds": "-1"}), "", 422, [][]any{loc("body", "duration_seconds")}},
	{"duration over a day", body(map[string]string{"duration_seconds": "86401"}), "", 422, [][]any{loc("body", "duration_seconds")}},
	{"duration beyond int64", body(map[string]string{"duration_seconds": "99999999999999999999999"}), "", 422, [][]any{loc("body", "duration_seconds")}},
	{"duration below int64", body(map[string]string{"duration_seconds": "-99999999999999999999999"}), "", 422, [][]any{loc("body", "duration_seconds")}},
	{"duration bool", body(map[string]string{"duration_seconds": "true"}), "", 422, [][]any{loc("body", "duration_seconds")}},
	{"sentiment negative", body(map[string]string{"sentiment_score": "-0.01"}), "", 422, [][]any{loc("body", "sentiment_score")}},
	{"sentiment above one", body(map[string]string{"sentiment_score": "1.0000001"}), "", 422, [][]any{loc("body", "sentiment_score")}},
	{"sentiment overflows to infinity", body(map[string]string{"sentiment_score": "1e999"}), "", 422, [][]any{loc("body", "sentiment_score")}},
	{"sentiment minus infinity", body(map[string]string{"sentiment_score": "-1e999"}), "", 422, [][]any{loc("body", "sentiment_score")}},
	{"sentiment string NaN", body(map[string]string{"sentiment_score": `"NaN"`}), "", 422, [][]any{loc("body", "sentiment_score")}},
	{"naive started_at", body(map[string]string{"started_at": `"2026-03-10T10:00:00"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"date only", body(map[string]string{"started_at": `"2026-03-10"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"February 30", body(map[string]string{"started_at": `"2026-02-30T10:00:00Z"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"month 13", body(map[string]string{"started_at": `"2026-13-01T10:00:00Z"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"hour 24", body(map[string]string{"started_at": `"2026-03-10T24:00:00Z"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"leap second", body(map[string]string{"started_at": `"2025-12-31T23:59:60Z"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"offset +25:00", body(map[string]string{"started_at": `"2026-03-10T10:00:00+25:00"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"offset +05:60", body(map[string]string{"started_at": `"2026-03-10T10:00:00+05:60"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"offset without colon", body(map[string]string{"started_at": `"2026-03-10T10:00:00+0100"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"offset hours only", body(map[string]string{"started_at": `"2026-03-10T10:00:00+01"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"comma fraction", body(map[string]string{"started_at": `"2026-03-10T10:00:00,5Z"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"ten fraction digits", body(map[string]string{"started_at": `"2026-03-10T10:00:00.1234567891Z"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"empty fraction", body(map[string]string{"started_at": `"2026-03-10T10:00:00.Z"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"before 2000", body(map[string]string{"started_at": `"1999-12-31T23:59:59Z"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"before 2000 by its offset", body(map[string]string{"started_at": `"2000-01-01T00:30:00+01:00"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"year zero", body(map[string]string{"started_at": `"0000-01-01T00:00:00Z"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"six minutes ahead", body(map[string]string{"started_at": `"2026-03-10T12:06:00Z"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"far future", body(map[string]string{"started_at": `"9999-12-31T23:59:59Z"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"words", body(map[string]string{"started_at": `"yesterday"`}), "", 422, [][]any{loc("body", "started_at")}},
	{"empty started_at", body(map[string]string{"started_at": `""`}), "", 422, [][]any{loc("body", "started_at")}},
	{"empty session_id", body(map[string]string{"session_id": `""`}), "", 422, [][]any{loc("body", "session_id")}},
	{"129-character session_id", body(map[string]string{"session_id": `"` + strings.Repeat("s", 129) + `"`}), "", 422, [][]any{loc("body", "session_id")}},
	{"129 multibyte characters", body(map[string]string{"session_id": `"` + strings.Repeat("é", 129) + `"`}), "", 422, [][]any{loc("body", "session_id")}},
	{"NUL in session_id", body(map[string]string{"session_id": `"s\u0000"`}), "", 422, [][]any{loc("body", "session_id")}},
	{"lone surrogate in session_id", body(map[string]string{"session_id": `"s\ud800"`}), "", 422, [][]any{loc("body", "session_id")}},
	{"reversed surrogates", body(map[string]string{"session_id": `"\udc00\ud800"`}), "", 422, [][]any{loc("body", "session_id")}},
	{"empty user", body(map[string]string{"user_external_id": `""`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"129-character user", body(map[string]string{"user_external_id": `"` + strings.Repeat("u", 129) + `"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"slash in user", body(map[string]string{"user_external_id": `"a/b"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"space in user", body(map[string]string{"user_external_id": `"a b"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"tab in user", body(map[string]string{"user_external_id": `"a\tb"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"newline in user", body(map[string]string{"user_external_id": `"a\nb"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"NUL in user", body(map[string]string{"user_external_id": `"a\u0000b"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"DEL in user", body(map[string]string{"user_external_id": `"a\u007fb"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"next line in user", body(map[string]string{"user_external_id": `"a\u0085b"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"no-break space in user", body(map[string]string{"user_external_id": `"a\u00a0b"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"zero-width space in user", body(map[string]string{"user_external_id": `"a\u200bb"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"line separator in user", body(map[string]string{"user_external_id": `"a\u2028b"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"lone surrogate in user", body(map[string]string{"user_external_id": `"\udfff"`}), "", 422, [][]any{loc("body", "user_external_id")}},
	{"every field wrong at once", `{"session_id":"","user_external_id":"a b","started_at":"2026-03-10T10:00:00","duration_seconds":1.5,"sentiment_score":2,"Extra":1,"extra":2,"DURATION_SECONDS":3}`, "", 422, [][]any{
		loc("body", "DURATION_SECONDS"), loc("body", "session_id"), loc("body", "user_external_id"),
		loc("body", "started_at"), loc("body", "duration_seconds"), loc("body", "sentiment_score")}},
	{"too large", `{"pad":"` + strings.Repeat("x", maxBodyBytes) + `",` + body(nil)[1:], "", 413, nil},
	{"text/plain", body(nil), "text/plain", 415, nil},
	{"form encoded", body(nil), "application/x-www-form-urlencoded", 415, nil},
	{"latin-1 JSON", body(nil), "application/json; charset=latin1", 415, nil},
	{"unknown media type parameter", body(nil), "application/json; version=2", 415, nil},
	{"json look-alike", body(nil), "application/jsonx", 415, nil},
	{"malformed Content-Type", body(nil), "application/json; charset", 415, nil},
}

func TestHostileBodiesAreRefusedAndStoreNothing(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	ts.pinClock(decodeNow)
	for _, tc := range hostileBodies {
		contentType := tc.contentType
		if contentType == "" {
			contentType = "application/json"
		}
		rec := ts.request(t, http.MethodPost, "/internal/ingest/session_summary", tc.body,
			"Authorization", "Bearer "+ingestToken, "Content-Type", contentType)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d; body %s", tc.name, rec.Code, tc.status, rec.Body)
			continue
		}
		if tc.status != http.StatusUnprocessableEntity {
			var detail struct{ Detail string }
			if err := json.Unmarshal(rec.Body.Bytes(), &detail); err != nil || detail.Detail == "" {
				t.Errorf("%s: body %s, want {\"detail\": \"...\"}", tc.name, rec.Body)
			}
			continue
		}
		checkValidationBody(t, tc.name, rec.Body.Bytes(), tc.locs)
	}

	var sessions, users int
	err := ts.pool.QueryRow(context.Background(),
		`select (select count(*) from sessions), (select count(*) from users)`).Scan(&sessions, &users)
	if err != nil {
		t.Fatal(err)
	}
	if sessions != 0 || users != 0 {
		t.Fatalf("after refused requests: %d sessions and %d users stored, want none", sessions, users)
	}
}

// checkValidationBody checks a 422 body's shape and, when want is not nil,
// the location of every error.
func checkValidationBody(t *testing.T, name string, raw []byte, want [][]any) {
	t.Helper()
	var got struct {
		Detail []struct {
			Loc  []any  `json:"loc"`
			Msg  string `json:"msg"`
			Type string `json:"type"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(raw, &got); err != nil || len(got.Detail) == 0 {
		t.Errorf("%s: body %s is not a FastAPI validation error", name, raw)
		return
	}
	var locs [][]any
	for _, d := range got.Detail {
		if d.Msg == "" || d.Type == "" || len(d.Loc) == 0 || d.Loc[0] != "body" {
			t.Errorf("%s: error entry %+v lacks msg, type or a body loc", name, d)
		}
		locs = append(locs, d.Loc)
	}
	if want == nil {
		return
	}
	gotJSON, _ := json.Marshal(locs)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("%s: locs %s, want %s", name, gotJSON, wantJSON)
	}
}

func TestDecodeErrorTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body, field, typ string
	}{
		{``, "", "missing"},
		{`[]`, "", "model_attributes_type"},
		{`{"a":}`, "", "json_invalid"},
		{body(nil, "session_id"), "session_id", "missing"},
		{body(map[string]string{"session_id": "null"}), "session_id", "missing"},
		{body(map[string]string{"session_id": "7"}), "session_id", "string_type"},
		{body(map[string]string{"session_id": `""`}), "session_id", "string_too_short"},
		{body(map[string]string{"session_id": `"` + strings.Repeat("s", 129) + `"`}), "session_id", "string_too_long"},
		{body(map[string]string{"user_external_id": `"a/b"`}), "user_external_id", "string_pattern_mismatch"},
		{body(map[string]string{"started_at": `5`}), "started_at", "datetime_type"},
		{body(map[string]string{"started_at": `"2026-03-10T10:00:00"`}), "started_at", "timezone_aware"},
		{body(map[string]string{"started_at": `"2026-02-30T10:00:00Z"`}), "started_at", "datetime_parsing"},
		{body(map[string]string{"duration_seconds": `"5"`}), "duration_seconds", "int_type"},
		{body(map[string]string{"duration_seconds": `5.5`}), "duration_seconds", "int_from_float"},
		{body(map[string]string{"duration_seconds": `-5`}), "duration_seconds", "greater_than_equal"},
		{body(map[string]string{"duration_seconds": `86401`}), "duration_seconds", "less_than_equal"},
		{body(map[string]string{"sentiment_score": `false`}), "sentiment_score", "float_type"},
		{body(map[string]string{"sentiment_score": `1e999`}), "sentiment_score", "finite_number"},
		{body(map[string]string{"sentiment_score": `1.5`}), "sentiment_score", "less_than_equal"},
		{strings.Replace(body(nil), `"started_at"`, `"Started_At"`, 1), "Started_At", "extra_forbidden"},
		{strings.Replace(body(nil), `{`, `{"session_id":"x",`, 1), "session_id", "duplicate_key"},
	} {
		_, err := decodeSessionSummary([]byte(tc.body), decodeNow)
		var errs validationErrors
		if !errors.As(err, &errs) {
			t.Errorf("%s: error %v, want validation errors", tc.body, err)
			continue
		}
		first := errs[0]
		if first.Type != tc.typ || (tc.field != "" && (len(first.Loc) != 2 || first.Loc[1] != tc.field)) {
			t.Errorf("%.60s: first error %+v, want type %s at %s", tc.body, first, tc.typ, tc.field)
		}
	}
}

func TestDecodeMalformedJSONGivesOffset(t *testing.T) {
	t.Parallel()
	_, err := decodeSessionSummary([]byte(`{"session_id": oops}`), decodeNow)
	raw, _ := marshalJSON(err.(validationErrors).body())
	want := `{"detail":[{"loc":["body",15],"msg":"JSON decode error: invalid character 'o' looking for beginning of value","type":"json_invalid"}]}`
	if string(raw) != want {
		t.Fatalf("body = %s\nwant   %s", raw, want)
	}
}

func TestDecodeAcceptsTheContract(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("界", 128)
	for _, tc := range []struct {
		name string
		body string
		want func(t *testing.T, s store.Session)
	}{
		{"the original FastAPI service's example", body(nil), func(t *testing.T, s store.Session) {
			if s.SessionID != "s-1" || s.UserExternalID != "u-1" || s.DurationSeconds != 720 || s.SentimentScore != 0.68 ||
				!s.StartedAt.Equal(time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)) {
				t.Errorf("decoded %+v", s)
			}
		}},
		{"128-character ids", body(map[string]string{"session_id": `"` + long + `"`, "user_external_id": `"` + long + `"`}), func(t *testing.T, s store.Session) {
			if s.SessionID != long || s.UserExternalID != long {
				t.Errorf("ids not kept whole")
			}
		}},
		{"unicode user", body(map[string]string{"user_external_id": `"ümlaut-ユーザー-😀"`}), nil},
		{"escaped ids", body(map[string]string{"session_id": `"a\"b\\c\u00e9\ud83d\ude00"`}), func(t *testing.T, s store.Session) {
			if s.SessionID != "a\"b\\cé😀" {
				t.Errorf("session_id = %q", s.SessionID)
			}
		}},
		{"escaped backslash before u", body(map[string]string{"session_id": `"\\ud800"`}), func(t *testing.T, s store.Session) {
			if s.SessionID != `\ud800` {
				t.Errorf("session_id = %q", s.SessionID)
			}
		}},
		{"duration bounds 0", body(map[string]string{"duration_seconds": "0"}), nil},
		{"duration bounds 86400", body(map[string]string{"duration_seconds": "86400"}), nil},
		{"duration minus zero", body(map[string]string{"duration_seconds": "-0"}), nil},
		{"duration as Python's float 720.0", body(map[string]string{"duration_seconds": "720.0"}), func(t *testing.T, s store.Session) {
			if s.DurationSeconds != 720 {
				t.Errorf("duration = %d", s.DurationSeconds)
			}
		}},
		{"duration with an integral exponent", body(map[string]string{"duration_seconds": "7.2e2"}), func(t *testing.T, s store.Session) {
			if s.DurationSeconds != 720 {
				t.Errorf("duration = %d", s.DurationSeconds)
			}
		}},
		{"sentiment 0", body(map[string]string{"sentiment_score": "0"}), nil},
		{"sentiment 1", body(map[string]string{"sentiment_score": "1"}), nil},
		{"sentiment 1.0", body(map[string]string{"sentiment_score": "1.0"}), nil},
		{"sentiment with exponent", body(map[string]string{"sentiment_score": "5e-1"}), func(t *testing.T, s store.Session) {
			if s.SentimentScore != 0.5 {
				t.Errorf("sentiment = %v", s.SentimentScore)
			}
		}},
		{"sentiment minus zero", body(map[string]string{"sentiment_score": "-0.0"}), func(t *testing.T, s store.Session) {
			if math.Signbit(s.SentimentScore) {
				t.Errorf("sentiment -0 kept its sign")
			}
		}},
		{"offset", body(map[string]string{"started_at": `"2026-03-10T12:00:00+02:00"`}), func(t *testing.T, s store.Session) {
			if !s.StartedAt.Equal(time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)) {
				t.Errorf("started_at = %v", s.StartedAt)
			}
		}},
		{"offset +23:59", body(map[string]string{"started_at": `"2026-03-10T10:00:00+23:59"`}), nil},
		{"offset -00:00", body(map[string]string{"started_at": `"2026-03-10T10:00:00-00:00"`}), nil},
		{"lower-case t and z", body(map[string]string{"started_at": `"2026-03-10t10:00:00z"`}), nil},
		{"space separator", body(map[string]string{"started_at": `"2026-03-10 10:00:00+00:00"`}), nil},
		{"Python isoformat", body(map[string]string{"started_at": `"2026-03-10T10:00:00.123456+00:00"`}), func(t *testing.T, s store.Session) {
			if s.StartedAt.Nanosecond() != 123456000 {
				t.Errorf("fraction = %d ns", s.StartedAt.Nanosecond())
			}
		}},
		{"nine fraction digits", body(map[string]string{"started_at": `"2026-03-10T10:00:00.123456789Z"`}), nil},
		{"first instant of 2000", body(map[string]string{"started_at": `"2000-01-01T00:00:00Z"`}), nil},
		{"exactly five minutes ahead", body(map[string]string{"started_at": `"2026-03-10T12:05:00Z"`}), nil},
		{"unknown fields ignored", strings.Replace(body(nil), `{`, `{"extra":{"nested":[1,2,{"deep":null}]},"device":"x",`, 1), nil},
		{"key written with an escape", strings.Replace(body(nil), `"session_id"`, `"session\u005fid"`, 1), nil},
		{"whitespace around", "\n\t " + body(nil) + " \r\n", nil},
	} {
		s, err := decodeSessionSummary([]byte(tc.body), decodeNow)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tc.want != nil {
			tc.want(t, s)
		}
	}
}

// FuzzDecodeSessionSummary checks that the decoder never panics and that
// whatever it accepts is inside the contract's ranges.
func FuzzDecodeSessionSummary(f *testing.F) {
	for _, tc := range hostileBodies {
		if len(tc.body) < 4096 {
			f.Add([]byte(tc.body))
		}
	}
	f.Add([]byte(body(nil)))
	f.Add([]byte(body(map[string]string{"started_at": `"2026-03-10T12:05:00.5+05:30"`, "sentiment_score": "1e-1"})))
	f.Add([]byte(`{"session_id":"\ud83d\ude00","user_external_id":"\u00e9","started_at":"2000-01-01t00:00:00z","duration_seconds":-0,"sentiment_score":-0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeSessionSummary(data, decodeNow)
		if err != nil {
			var errs validationErrors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %v is not a non-empty validationErrors", err)
			}
			if _, err := marshalJSON(errs.body()); err != nil {
				t.Fatalf("422 body does not encode: %v", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if n := utf8.RuneCountInString(s.SessionID); n < 1 || n > 128 || strings.ContainsRune(s.SessionID, 0) {
			t.Fatalf("accepted session_id %q", s.SessionID)
		}
		if n := utf8.RuneCountInString(s.UserExternalID); n < 1 || n > 128 {
			t.Fatalf("accepted user_external_id %q", s.UserExternalID)
		}
		for _, r := range s.UserExternalID {
			if r == '/' || unicode.IsSpace(r) || unicode.IsControl(r) {
				t.Fatalf("accepted user_external_id %q", s.UserExternalID)
			}
		}
		if s.StartedAt.Before(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) || s.StartedAt.After(decodeNow.Add(5*time.Minute)) {
			t.Fatalf("accepted started_at %v", s.StartedAt)
		}
		if s.DurationSeconds < 0 || s.DurationSeconds > 86400 {
			t.Fatalf("accepted duration_seconds %d", s.DurationSeconds)
		}
		if !(s.SentimentScore >= 0 && s.SentimentScore <= 1) {
			t.Fatalf("accepted sentiment_score %v", s.SentimentScore)
		}
	})
}
