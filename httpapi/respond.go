package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"coco/sql/store"
)

// httpError is an error whose status and detail a client may see.
type httpError struct {
	status int
	detail string
}

func (e *httpError) Error() string { return e.detail }

var (
	errNotAuthenticated = &httpError{http.StatusUnauthorized, "Not authenticated"}
	errInvalidToken     = &httpError{http.StatusUnauthorized, "Invalid bearer token"}
	errForbiddenUser    = &httpError{http.StatusForbidden, "This token may not read this user's dashboard"}
	errNotFound         = &httpError{http.StatusNotFound, "Not Found"}
	errMethodNotAllowed = &httpError{http.StatusMethodNotAllowed, "Method Not Allowed"}
	errMediaType        = &httpError{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	errDraining         = &httpError{http.StatusServiceUnavailable, "shutting down"}
	errUnavailable      = &httpError{http.StatusServiceUnavailable, "database unavailable"}
	errInternal         = &httpError{http.StatusInternalServerError, "Internal Server Error"}
)

// detailBody is FastAPI's error shape, which clients of the original
// FastAPI service parse.
type detailBody struct {
	Detail string `json:"detail"`
}

// conflictBody keeps the "status" key of the ingest answers, so a device that
// switches on status sees "conflict" rather than a missing key.
type conflictBody struct {
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// writeError is the one place an error becomes a response. Only httpError,
// validation and conflict errors show their text; anything else is logged
// and answered with an opaque 500, because driver errors can name tables,
// constraints and values.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		he       *httpError
		invalid  validationErrors
		refused  *store.InvalidError
		conflict *store.ConflictError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &invalid):
		writeJSON(w, http.StatusUnprocessableEntity, invalid.body())
	case errors.As(err, &refused):
		s.metrics.dbErrors.WithLabelValues("invalid").Inc()
		// Only time zones are judged by the database.
		writeJSON(w, http.StatusUnprocessableEntity, validationErrors{errZoneUnknown.at(bodyLoc, refused.Field)}.body())
	case errors.Is(err, store.ErrGone):
		s.metrics.dbErrors.WithLabelValues("gone").Inc()
		writeJSON(w, http.StatusGone, detailBody{"user erased"})
	case errors.As(err, &conflict):
		s.metrics.dbErrors.WithLabelValues("conflict").Inc()
		writeJSON(w, http.StatusConflict, conflictBody{Status: "conflict", Detail: conflict.Error()})
	case errors.As(err, &tooLarge):
		writeJSON(w, http.StatusRequestEntityTooLarge, detailBody{"Request body is larger than " + byteSize(tooLarge.Limit)})
	case errors.Is(err, store.ErrUnavailable):
		s.metrics.dbErrors.WithLabelValues("unavailable").Inc()
		if r.Context().Err() != nil {
			// The client hung up, which cancelled the query: not an outage.
			s.logger.Info("client went away", "request_id", requestIDFrom(r.Context()))
		} else {
			s.logger.Warn("database unavailable", "request_id", requestIDFrom(r.Context()), "error", err.Error())
		}
		// The database is usually back within a second or two (a restart, a
		// failover, a burst of connections); the device retries anyway.
		w.Header().Set("Retry-After", "1")
		writeJSON(w, errUnavailable.status, detailBody{errUnavailable.detail})
	case errors.As(err, &he):
		if he.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
		writeJSON(w, he.status, detailBody{he.detail})
	default:
		s.metrics.dbErrors.WithLabelValues("internal").Inc()
		s.logger.Error("request failed", "request_id", requestIDFrom(r.Context()), "error", err.Error())
		writeJSON(w, errInternal.status, detailBody{errInternal.detail})
	}
}

// byteSize writes a body limit as people do: 64 KiB, 1 MiB.
func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// marshalJSON encodes v the way FastAPI's JSONResponse does: compact, no
// trailing newline, and no \u003c-style escaping of HTML characters.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeJSON writes v with status. Every value passed here is a fixed struct
// that cannot fail to encode; should one ever fail, the client gets a 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := marshalJSON(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"detail":"Internal Server Error"}`)
	}
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	// Known in full, so never chunked, however long.
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, errNotFound)
}

// methodNotAllowed runs after the router has set Allow.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, errMethodNotAllowed)
}
