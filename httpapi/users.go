package httpapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"time"

	"github.com/julienschmidt/httprouter"

	"coco/sql/store"
)

// The settings body's fields, in the order of their errors.
const (
	fieldDayStartsAt   = "day_starts_at"
	fieldEffectiveFrom = "effective_from"
)

var settingsFields = []string{fieldTimeZone, fieldDayStartsAt, fieldEffectiveFrom}

var (
	errSettingsEmpty = &problem{"missing", "Give time_zone, day_starts_at or both"}
	errZoneName      = &problem{"string_pattern_mismatch",
		"Input should be an IANA time zone name such as Europe/Berlin or America/Los_Angeles"}
	errZoneUnknown = &problem{"value_error",
		"Unknown time zone: use an IANA name that PostgreSQL knows, such as Europe/Berlin"}
	errDayStart     = &problem{"string_pattern_mismatch", "Input should be a time of day written HH:MM"}
	errDayStartLate = &problem{"less_than_equal", "Input should be between 00:00 and 12:00"}
	errUserNotFound = &httpError{http.StatusNotFound, "User not found"}
)

// settingsBody is the answer of both settings routes.
type settingsBody struct {
	UserID      string              `json:"user_id"`
	TimeZone    string              `json:"time_zone"`
	DayStartsAt string              `json:"day_starts_at"`
	History     []settingsEntryBody `json:"history"`
}

type settingsEntryBody struct {
	EffectiveFrom string `json:"effective_from"`
	TimeZone      string `json:"time_zone"`
	DayStartsAt   string `json:"day_starts_at"`
}

// handleGetSettings answers a user's time zone and day start, with their
// history; 404 for an unknown user.
func (s *Server) handleGetSettings(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	userID, ok := s.pathUser(w, r, ps)
	if !ok {
		return
	}
	s.writeSettings(w, r, userID)
}

// handlePutSettings records a change of a user's settings, creating the
// user if unknown, and answers the settings as they then are.
func (s *Server) handlePutSettings(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	userID, ok := s.pathUser(w, r, ps)
	if !ok {
		return
	}
	body, err := readBody(w, r, maxBodyBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	change, err := decodeSettingsChange(body, s.now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := s.dbContext(r)
	defer cancel()
	if err := s.store.ChangeSettings(ctx, userID, change); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeSettings(w, r, userID)
}

// pathUser returns the path's user_id, or answers 422 when it breaks the
// id rule.
func (s *Server) pathUser(w http.ResponseWriter, r *http.Request, ps httprouter.Params) (string, bool) {
	userID := ps.ByName("user_id")
	if p := validExternalID(userID); p != nil {
		s.writeError(w, r, validationErrors{p.at([]any{"path"}, "user_id")})
		return "", false
	}
	setLogUser(r.Context(), userID)
	return userID, true
}

func (s *Server) writeSettings(w http.ResponseWriter, r *http.Request, userID string) {
	ctx, cancel := s.dbContext(r)
	defer cancel()
	settings, found, err := s.store.Settings(ctx, userID, s.now())
	switch {
	case err != nil:
		s.writeError(w, r, err)
		return
	case !found:
		s.writeError(w, r, errUserNotFound)
		return
	}
	body := settingsBody{UserID: userID, TimeZone: settings.TimeZone, DayStartsAt: settings.DayStartsAt,
		History: []settingsEntryBody{}}
	for _, c := range settings.History {
		body.History = append(body.History, settingsEntryBody{
			EffectiveFrom: formatTimestamp(c.EffectiveFrom), TimeZone: c.TimeZone, DayStartsAt: c.DayStartsAt,
		})
	}
	writeJSON(w, http.StatusOK, body)
}

// decodeSettingsChange parses and validates a settings body against the
// clock reading now: at least one of time_zone and day_starts_at, and an
// effective_from (default now) no more than FutureTolerance ahead. Unknown
// keys are refused, so a typo is not a silent no-op.
func decodeSettingsChange(body []byte, now time.Time) (store.SettingsChange, error) {
	c := store.SettingsChange{EffectiveFrom: now}
	values, errs := readObject(body, bodyLoc, settingsFields, refuseExtra)
	if values == nil {
		return c, errs
	}
	present := func(name string) (json.RawMessage, bool) {
		raw, ok := values[name]
		return raw, ok && string(raw) != "null"
	}
	if raw, ok := present(fieldTimeZone); ok {
		var p *problem
		if c.TimeZone, p = decodeTimeZone(raw); p != nil {
			errs = append(errs, p.at(bodyLoc, fieldTimeZone))
		}
	}
	if raw, ok := present(fieldDayStartsAt); ok {
		var p *problem
		if c.DayStartsAt, p = decodeDayStartsAt(raw); p != nil {
			errs = append(errs, p.at(bodyLoc, fieldDayStartsAt))
		}
	}
	if raw, ok := present(fieldEffectiveFrom); ok {
		var p *problem
		if c.EffectiveFrom, p = decodeStartedAt(raw, now); p != nil {
			errs = append(errs, p.at(bodyLoc, fieldEffectiveFrom))
		}
	}
	_, hasZone := present(fieldTimeZone)
	_, hasStart := present(fieldDayStartsAt)
	if !hasZone && !hasStart {
		errs = append(errs, errSettingsEmpty.at(bodyLoc))
	}
	if len(errs) > 0 {
		return c, errs
	}
	return c, nil
}

// zoneName is the shape of an IANA zone name (Area/Location, UTC,
// Etc/GMT+5); whether PostgreSQL knows it is the database's to say.
var zoneName = regexp.MustCompile(`^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$`)

func decodeTimeZone(raw json.RawMessage) (string, *problem) {
	s, p := decodeString(raw)
	switch {
	case p != nil:
		return "", p
	case len(s) > MaxTimeZoneChars || !zoneName.MatchString(s):
		return "", errZoneName
	}
	return s, nil
}

var dayStart = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

func decodeDayStartsAt(raw json.RawMessage) (string, *problem) {
	s, p := decodeString(raw)
	switch {
	case p != nil:
		return "", p
	case !dayStart.MatchString(s):
		return "", errDayStart
	case s > MaxDayStartsAt:
		return "", errDayStartLate
	}
	return s, nil
}
