package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func (ts *testServer) putSettings(t *testing.T, userID, body string) *httptest.ResponseRecorder {
	t.Helper()
	return ts.request(t, http.MethodPut, "/internal/users/"+userID+"/settings", body,
		"Authorization", "Bearer "+ingestToken, "Content-Type", "application/json")
}

func (ts *testServer) getSettings(t *testing.T, userID string) *httptest.ResponseRecorder {
	t.Helper()
	return ts.request(t, http.MethodGet, "/internal/users/"+userID+"/settings", "", "Authorization", "Bearer "+ingestToken)
}

func TestSettingsRoundTrip(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	ts.pinClock(now)

	expectStatus(t, ts.getSettings(t, "rose"), http.StatusNotFound)
	expectBody(t, ts.getSettings(t, "rose"), `{"detail":"User not found"}`)

	rec := ts.putSettings(t, "rose", `{"time_zone":"America/Los_Angeles"}`)
	expectStatus(t, rec, http.StatusOK)
	expectBody(t, rec, `{"user_id":"rose","time_zone":"America/Los_Angeles","day_starts_at":"00:00",`+
		`"history":[{"effective_from":"2026-03-10T12:00:00Z","time_zone":"America/Los_Angeles","day_starts_at":"00:00"}]}`)

	// A correction in the past, changing only the day start: the zone in
	// force then (UTC, before the first change) is kept.
	rec = ts.putSettings(t, "rose", `{"day_starts_at":"04:30","effective_from":"2026-03-01T00:00:00+01:00"}`)
	expectStatus(t, rec, http.StatusOK)
	expectBody(t, rec, `{"user_id":"rose","time_zone":"America/Los_Angeles","day_starts_at":"00:00",`+
		`"history":[{"effective_from":"2026-02-28T23:00:00Z","time_zone":"UTC","day_starts_at":"04:30"},`+
		`{"effective_from":"2026-03-10T12:00:00Z","time_zone":"America/Los_Angeles","day_starts_at":"00:00"}]}`)
	expectBody(t, ts.getSettings(t, "rose"), rec.Body.String())

	// The same values again record nothing.
	before := ts.getSettings(t, "rose").Body.String()
	expectStatus(t, ts.putSettings(t, "rose", `{"time_zone":"America/Los_Angeles"}`), http.StatusOK)
	expectBody(t, ts.getSettings(t, "rose"), before)
}

func TestSettingsRefusals(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	ts.pinClock(time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		name, body string
		status     int
		loc, typ   string
	}{
		{"unknown zone", `{"time_zone":"Mars/Olympus_Mons"}`, 422, `["body","time_zone"]`, "value_error"},
		{"an abbreviation", `{"time_zone":"PST"}`, 422, `["body","time_zone"]`, "value_error"},
		{"not a zone name", `{"time_zone":"Europe/Berlin; drop table users"}`, 422, `["body","time_zone"]`, "string_pattern_mismatch"},
		{"bad HH:MM", `{"day_starts_at":"4am"}`, 422, `["body","day_starts_at"]`, "string_pattern_mismatch"},
		{"after noon", `{"day_starts_at":"12:01"}`, 422, `["body","day_starts_at"]`, "less_than_equal"},
		{"too far ahead", `{"time_zone":"UTC","effective_from":"2026-03-10T12:05:01Z"}`, 422, `["body","effective_from"]`, "value_error"},
		{"naive effective_from", `{"time_zone":"UTC","effective_from":"2026-03-10T12:00:00"}`, 422, `["body","effective_from"]`, "timezone_aware"},
		{"unknown key", `{"timezone":"Asia/Tokyo"}`, 422, `["body","timezone"]`, "extra_forbidden"},
		{"neither field", `{"effective_from":"2026-03-10T11:00:00Z"}`, 422, `["body"]`, "missing"},
		{"not an object", `["Asia/Tokyo"]`, 422, `["body"]`, "model_attributes_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := ts.putSettings(t, "refused", tc.body)
			expectStatus(t, rec, tc.status)
			var got struct {
				Detail []struct {
					Loc  json.RawMessage `json:"loc"`
					Type string          `json:"type"`
				} `json:"detail"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, d := range got.Detail {
				found = found || string(d.Loc) == tc.loc && d.Type == tc.typ
			}
			if !found {
				t.Errorf("body %s, want an error %s at %s", rec.Body, tc.typ, tc.loc)
			}
		})
	}
	expectStatus(t, ts.getSettings(t, "refused"), http.StatusNotFound) // nothing was stored
	rec := ts.request(t, http.MethodPut, "/internal/users/refused/settings", `{"time_zone":"UTC"}`, "Authorization", "Bearer "+aliceToken)
	expectStatus(t, rec, http.StatusUnauthorized)
	expectStatus(t, ts.putSettings(t, "a%E2%80%8Bb", `{"time_zone":"UTC"}`), http.StatusUnprocessableEntity)
}

// The dashboard says which days it shows: the local date of its last day
// and the zone in force, both readable by the dashboard's origin.
func TestDashboardHeadersNameTheLocalWindow(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	now := time.Date(2026, 1, 22, 0, 30, 0, 0, time.UTC) // Jan 21, 16:30 in Los Angeles
	ts.pinClock(now)
	expectStatus(t, ts.putSettings(t, "alice", `{"time_zone":"America/Los_Angeles","effective_from":"2026-01-01T00:00:00Z"}`), http.StatusOK)
	started := time.Date(2026, 1, 21, 7, 30, 0, 0, time.UTC) // Jan 20, 23:30 there
	expectStatus(t, ts.ingest(t, summaryJSON("la-1", "alice", started, 600, 0.7)), http.StatusOK)

	rec := ts.dashboard(t, "alice", aliceToken, "Origin", testOrigin)
	expectStatus(t, rec, http.StatusOK)
	expectHeader(t, rec, "Coco-Window-End", "2026-01-21")
	expectHeader(t, rec, "Coco-Time-Zone", "America/Los_Angeles")
	if !strings.Contains(rec.Body.String(), `"dailyDurations":[0,0,0,0,0,10,0]`) {
		t.Errorf("body %s, want the session on Jan 20, the day before the window's last", rec.Body)
	}
	expose := rec.Header().Get("Access-Control-Expose-Headers")
	for _, h := range []string{"ETag", "Coco-Window-End", "Coco-Time-Zone"} {
		if !strings.Contains(expose, h) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", expose, h)
		}
	}
	// The 304 carries them too.
	rec = ts.dashboard(t, "alice", aliceToken, "If-None-Match", rec.Header().Get("ETag"))
	expectStatus(t, rec, http.StatusNotModified)
	expectHeader(t, rec, "Coco-Window-End", "2026-01-21")

	// An unknown user is in UTC.
	rec = ts.dashboard(t, "nobody", adminToken)
	expectHeader(t, rec, "Coco-Window-End", "2026-01-22")
	expectHeader(t, rec, "Coco-Time-Zone", "UTC")
}

// The ETag changes at the family's midnight, not at UTC midnight.
func TestETagFollowsTheLocalDay(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	ts.pinClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	expectStatus(t, ts.putSettings(t, "alice", `{"time_zone":"Asia/Tokyo"}`), http.StatusOK)
	etagAt := func(at time.Time) string {
		ts.pinClock(at)
		rec := ts.dashboard(t, "alice", aliceToken)
		expectStatus(t, rec, http.StatusOK)
		return rec.Header().Get("ETag")
	}
	before := etagAt(time.Date(2026, 3, 10, 14, 59, 0, 0, time.UTC))
	after := etagAt(time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)) // midnight in Tokyo
	utcMidnight := etagAt(time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC))
	if before == after || after != utcMidnight {
		t.Errorf("ETags %s, %s, %s; want a new one at Tokyo's midnight and the same at UTC midnight", before, after, utcMidnight)
	}
}

func TestIngestTimeZone(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	withZone := func(id, zone string) string {
		var m map[string]any
		_ = json.Unmarshal([]byte(summaryJSON(id, "alice", started, 60, 0.5)), &m)
		m["time_zone"] = zone
		b, _ := json.Marshal(m)
		return string(b)
	}
	rec := ts.ingest(t, withZone("tz-1", "Asia/Tokyo"))
	expectStatus(t, rec, http.StatusOK)
	expectBody(t, rec, `{"status":"ok"}`)
	if got := ts.getSettings(t, "alice").Body.String(); !strings.Contains(got, `"time_zone":"Asia/Tokyo"`) {
		t.Errorf("settings after an ingest from Tokyo: %s", got)
	}
	rec = ts.ingest(t, withZone("tz-2", "Mars/Base"))
	expectStatus(t, rec, http.StatusUnprocessableEntity)
	expectBody(t, rec, `{"detail":[{"loc":["body","time_zone"],"msg":"`+errZoneUnknown.msg+`","type":"value_error"}]}`)
	var n int
	if err := ts.pool.QueryRow(t.Context(), `select count(*) from sessions where session_id = 'tz-2'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a session with an unknown zone was stored (%d, %v)", n, err)
	}
	rec = ts.ingest(t, withZone("tz-3", "not a zone"))
	expectStatus(t, rec, http.StatusUnprocessableEntity)
}
