package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"coco/sql/store"
)

// WindowDays is the length of every dashboard array; the SQL engine is
// built for exactly this window, so ROLLUP_WINDOW_DAYS accepts only this value.
const WindowDays = 7

// dashboardBody is the dashboard contract. Structs, not maps, because the
// frontend contract fixes the key order.
type dashboardBody struct {
	LastSession lastSessionBody `json:"lastSession"`
	Streak      streakBody      `json:"streak"`
	AvgDuration avgDurationBody `json:"avgDuration"`
	ToneTrend   toneTrendBody   `json:"toneTrend"`
	LastUpdated string          `json:"lastUpdated"`
}

type lastSessionBody struct {
	Timestamp *string `json:"timestamp"`
}

type streakBody struct {
	Days          int    `json:"days"`
	DailyActivity []bool `json:"dailyActivity"`
}

type avgDurationBody struct {
	Minutes        int   `json:"minutes"`
	DailyDurations []int `json:"dailyDurations"`
}

type toneTrendBody struct {
	Current string `json:"current"`
	// The SQL returns numeric(4,2) as float8, whose shortest form is what
	// encoding/json prints: 0.68, never 0.6800000001.
	DailySentiment []*float64 `json:"dailySentiment"`
}

// handleDashboard serves the user's seven-day snapshot. A polling dashboard
// sends back the ETag it has; while the stored snapshot is unchanged it gets
// a bodiless 304 after one indexed lookup, without the snapshot being read.
func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	userID := ps.ByName("user_id")
	if p := validExternalID(userID); p != nil {
		s.writeError(w, r, validationErrors{p.at([]any{"path"}, "user_id")})
		return
	}

	ctx, cancel := s.dbContext(r)
	defer cancel()
	now := s.now()
	if r.Header.Get("If-None-Match") != "" {
		version, ok, err := s.store.DashboardVersion(ctx, userID, now)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if etag := snapshotETag(userID, version); ok && etagMatches(r, etag) {
			setSnapshotHeaders(w, etag, version)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}

	snapshot, err := s.store.Dashboard(ctx, userID, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := dashboardJSON(snapshot)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	version := store.Version{WindowEnd: snapshot.WindowEnd, TimeZone: snapshot.TimeZone, UpdatedAt: snapshot.UpdatedAt}
	etag := snapshotETag(userID, version)
	setSnapshotHeaders(w, etag, version)
	if etagMatches(r, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeBody(w, http.StatusOK, body)
}

// setSnapshotHeaders says which days the snapshot shows (the local date of
// its last day, and the zone in force) and lets the browser keep it but
// makes it ask every time; the 304 makes asking cheap. private: it is one
// user's data.
func setSnapshotHeaders(w http.ResponseWriter, etag string, v store.Version) {
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, no-cache")
	h.Set("Coco-Window-End", v.WindowEnd.Format(time.DateOnly))
	h.Set("Coco-Time-Zone", v.TimeZone)
}

// dashboardJSON shapes a snapshot into the contract. It converts and checks,
// but computes nothing: every number is the SQL engine's.
func dashboardJSON(s store.Snapshot) ([]byte, error) {
	if len(s.DailyActivity) != WindowDays || len(s.DailyDurations) != WindowDays || len(s.DailySentiment) != WindowDays {
		return nil, fmt.Errorf("snapshot arrays have %d, %d and %d days, want %d",
			len(s.DailyActivity), len(s.DailyDurations), len(s.DailySentiment), WindowDays)
	}
	body := dashboardBody{
		Streak:      streakBody{Days: s.StreakDays, DailyActivity: s.DailyActivity},
		AvgDuration: avgDurationBody{Minutes: s.AvgDurationMinutes, DailyDurations: s.DailyDurations},
		ToneTrend:   toneTrendBody{Current: s.CurrentTone, DailySentiment: s.DailySentiment},
		LastUpdated: formatTimestamp(s.UpdatedAt),
	}
	if s.LastSessionAt != nil {
		ts := formatTimestamp(*s.LastSessionAt)
		body.LastSession.Timestamp = &ts
	}
	return marshalJSON(body)
}

// formatTimestamp writes t in UTC with a Z, as the original FastAPI
// service's Pydantic models did: whole seconds when there is no fraction ("2025-10-22T14:30:00Z"),
// otherwise exactly six digits ("2025-10-22T14:30:00.250000Z"). Six, because
// PostgreSQL keeps microseconds: a fixed width neither invents precision nor
// drops what the database has, and a client of the original service parsing
// it sees no change.
func formatTimestamp(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05Z")
	}
	return t.Format("2006-01-02T15:04:05.000000Z")
}

// snapshotETag names one snapshot: the SQL engine moves a rollup's
// updated_at, strictly increasing, whenever a number, the window or its zone
// changes (a new day's window gets the same updated_at wherever it is
// computed, and an unknown user's empty state the start of the day), so
// the user, the window, its zone and that instant identify the body and its
// headers without hashing them. The version prefix changes when this
// package changes how a snapshot is shaped.
func snapshotETag(userID string, v store.Version) string {
	sum := sha256.Sum256([]byte("v2\x00" + userID + "\x00" + v.WindowEnd.Format(time.DateOnly) + "\x00" +
		v.TimeZone + "\x00" + v.UpdatedAt.UTC().Format(time.RFC3339Nano)))
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// etagMatches reports whether the request's If-None-Match names etag, that
// is, whether the client already has this answer. It uses the weak
// comparison RFC 9110 section 13.1.2 prescribes for this header, so W/"x"
// matches "x", and "*" matches any current snapshot.
func etagMatches(r *http.Request, etag string) bool {
	for _, header := range r.Header.Values("If-None-Match") {
		for _, candidate := range strings.Split(header, ",") {
			candidate = strings.TrimSpace(candidate)
			if candidate == "*" || strings.TrimPrefix(candidate, "W/") == etag {
				return true
			}
		}
	}
	return false
}
