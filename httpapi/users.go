package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
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
	s.logger.Info("settings changed", "request_id", requestIDFrom(r.Context()), "user_id", userID,
		"time_zone", change.TimeZone, "day_starts_at", change.DayStartsAt, "effective_from", formatTimestamp(change.EffectiveFrom))
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

type erasedBody struct {
	Status   string `json:"status"`
	Sessions int    `json:"sessions"`
}

// handleEraseUser erases a user and everything stored about them, for good:
// later ingests of sessions that started before now are refused.
func (s *Server) handleEraseUser(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	userID, ok := s.pathUser(w, r, ps)
	if !ok {
		return
	}
	ctx, cancel := s.dbContext(r)
	defer cancel()
	n, known, err := s.store.Erase(ctx, userID, s.now())
	switch {
	case err != nil:
		s.writeError(w, r, err)
		return
	case !known:
		s.writeError(w, r, errUserNotFound)
		return
	}
	s.logger.Info("user erased", "request_id", requestIDFrom(r.Context()), "user_id", userID, "sessions", n)
	writeJSON(w, http.StatusOK, erasedBody{Status: "erased", Sessions: n})
}

// exportTimeout bounds an export's database work: a long history takes
// longer to send than any other request, and is worth the wait.
const exportTimeout = 5 * time.Minute

// handleExportUser streams everything stored about a user as one JSON
// document (see ExportUser); 404 for an unknown or erased user.
func (s *Server) handleExportUser(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	userID, ok := s.pathUser(w, r, ps)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), exportTimeout)
	defer cancel()
	rc := http.NewResponseController(w)
	out := &exportWriter{userID: userID, w: bufio.NewWriterSize(w, 32<<10), begin: func() {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="coco-export.json"`)
		w.WriteHeader(http.StatusOK)
	}, push: func() error {
		// Each chunk gets time to reach a slow client, however long the export.
		_ = rc.SetWriteDeadline(time.Now().Add(time.Minute))
		return rc.Flush()
	}}
	found, err := s.store.Export(ctx, userID, s.now(), out)
	switch {
	case err != nil && !out.started:
		s.writeError(w, r, err)
		return
	case err != nil:
		// The answer is under way: cut it, so the client sees a broken
		// transfer rather than a document that looks complete.
		s.logger.Warn("export cut off", "request_id", requestIDFrom(r.Context()), "error", err.Error())
		panic(http.ErrAbortHandler)
	case !found:
		s.writeError(w, r, errUserNotFound)
		return
	}
	s.logger.Info("user exported", "request_id", requestIDFrom(r.Context()), "user_id", userID, "sessions", out.sessions)
}

// ExportUser writes everything stored about the user with userID to w, as
// one JSON document read in one snapshot: {"user_id", "created_at",
// "settings" (the history, oldest first), "sessions" (oldest first, each
// with when it was received), "dashboard" (the dashboard body now)}. Rows
// are written as they are read, so a long history costs no memory. It
// reports false, having written nothing, for an unknown or erased user.
func ExportUser(ctx context.Context, st *store.Store, w io.Writer, userID string, now time.Time) (found bool, sessions int, err error) {
	out := &exportWriter{userID: userID, w: bufio.NewWriterSize(w, 32<<10)}
	found, err = st.Export(ctx, userID, now, out)
	return found, out.sessions, err
}

// exportWriter is a store.Exporter that writes the export's JSON as the
// rows come.
type exportWriter struct {
	userID   string
	w        *bufio.Writer
	enc      *json.Encoder // on w, for the sessions: one encoder, so little garbage per row
	begin    func()        // called before the first byte, when set
	push     func() error  // pushes what was written on to the client, when set
	started  bool
	sessions int
}

// sync writes out what is buffered, every exportFlushRows sessions and at
// the end.
func (e *exportWriter) sync() error {
	if err := e.w.Flush(); err != nil {
		return err
	}
	if e.push != nil {
		return e.push()
	}
	return nil
}

const exportFlushRows = 1000

type exportedSession struct {
	SessionID       string  `json:"session_id"`
	StartedAt       string  `json:"started_at"`
	DurationSeconds int     `json:"duration_seconds"`
	SentimentScore  float64 `json:"sentiment_score"`
	ReceivedAt      string  `json:"received_at"`
}

func (e *exportWriter) User(createdAt time.Time, settings []store.SettingsChange) error {
	e.started = true
	if e.begin != nil {
		e.begin()
	}
	history := []settingsEntryBody{}
	for _, c := range settings {
		history = append(history, settingsEntryBody{
			EffectiveFrom: formatTimestamp(c.EffectiveFrom), TimeZone: c.TimeZone, DayStartsAt: c.DayStartsAt,
		})
	}
	head, err := marshalJSON(struct {
		UserID    string              `json:"user_id"`
		CreatedAt string              `json:"created_at"`
		Settings  []settingsEntryBody `json:"settings"`
	}{e.userID, formatTimestamp(createdAt), history})
	if err != nil {
		return err
	}
	// The object stays open for the sessions that follow.
	e.w.Write(head[:len(head)-1])
	_, err = e.w.WriteString(`,"sessions":[`)
	return err
}

func (e *exportWriter) Session(s store.ExportedSession) error {
	if e.enc == nil {
		e.enc = json.NewEncoder(e.w)
		e.enc.SetEscapeHTML(false)
	} else {
		e.w.WriteByte(',')
	}
	e.sessions++
	// Encode ends each item with a newline, which JSON allows between items.
	if err := e.enc.Encode(exportedSession{
		SessionID: s.SessionID, StartedAt: formatTimestamp(s.StartedAt), DurationSeconds: s.DurationSeconds,
		SentimentScore: s.SentimentScore, ReceivedAt: formatTimestamp(s.ReceivedAt),
	}); err != nil {
		return err
	}
	if e.sessions%exportFlushRows == 0 {
		return e.sync()
	}
	return nil
}

func (e *exportWriter) Dashboard(snap store.Snapshot) error {
	body, err := dashboardJSON(snap)
	if err != nil {
		return err
	}
	e.w.WriteString(`],"dashboard":`)
	e.w.Write(body)
	if _, err := e.w.WriteString("}"); err != nil {
		return err
	}
	return e.sync()
}
