package httpapi

import (
	"errors"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"coco/sql/store"
)

// ingestBody is the answer to a stored or duplicate session.
type ingestBody struct {
	Status string `json:"status"`
}

// handleIngest stores one session summary from the device. Its answers are
// idempotent: a resend of the same summary is "duplicate", never an error.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	body, err := readBody(w, r, maxBodyBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	session, err := decodeSessionSummary(body, s.now())
	if session.UserExternalID != "" {
		setLogUser(r.Context(), session.UserExternalID)
	}
	if err != nil {
		s.metrics.ingested.WithLabelValues(string(store.Invalid)).Inc()
		s.writeError(w, r, err)
		return
	}

	ctx, cancel := s.dbContext(r)
	defer cancel()
	status, err := s.store.Ingest(ctx, session)
	if err != nil {
		var conflict *store.ConflictError
		var invalid *store.InvalidError
		switch {
		case errors.As(err, &conflict):
			s.metrics.ingested.WithLabelValues(string(store.Conflict)).Inc()
		case errors.As(err, &invalid):
			s.metrics.ingested.WithLabelValues(string(store.Invalid)).Inc()
		case errors.Is(err, store.ErrGone):
			s.metrics.ingested.WithLabelValues(string(store.Gone)).Inc()
		}
		s.writeError(w, r, err)
		return
	}
	s.metrics.ingested.WithLabelValues(string(status)).Inc()
	writeJSON(w, http.StatusOK, ingestBody{Status: string(status)})
}
