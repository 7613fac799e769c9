package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"
)

var errBodyRead = &httpError{http.StatusBadRequest, "Could not read the request body"}

// ingestBody is the answer to a stored or duplicate session.
type ingestBody struct {
	Status string `json:"status"`
}

// handleIngest stores one session summary from the device. Its answers are
// idempotent: a resend of the same summary is "duplicate", never an error.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if err := checkJSONContentType(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(innermost(w), r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) {
			err = errBodyRead // the client went away or stalled mid-body
		}
		s.writeError(w, r, err)
		return
	}
	session, err := decodeSessionSummary(body, s.now())
	if session.UserExternalID != "" {
		setLogUser(r.Context(), session.UserExternalID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	ctx, cancel := s.dbContext(r)
	defer cancel()
	status, err := s.store.Ingest(ctx, session)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ingestBody{Status: string(status)})
}

// checkJSONContentType refuses a body declared as anything but JSON in
// UTF-8: application/json, or a structured-syntax type built on it
// (RFC 6839) such as application/merge-patch+json or
// application/vnd.coco+json, in any letter case, optionally with
// charset=utf-8. A request without Content-Type is read as JSON, as the
// original FastAPI service did, so a device written against it that never
// set one keeps working.
func checkJSONContentType(r *http.Request) error {
	values := r.Header.Values("Content-Type")
	if len(values) == 0 {
		return nil
	}
	if len(values) > 1 {
		return errMediaType
	}
	// ParseMediaType lowercases the type and the parameter names.
	mediaType, params, err := mime.ParseMediaType(values[0])
	if err != nil || !isJSONMediaType(mediaType) {
		return errMediaType
	}
	for name, value := range params {
		// JSON is UTF-8 (RFC 8259 section 8.1); any other charset is a lie
		// or a body we would misread.
		if name != "charset" || !strings.EqualFold(value, "utf-8") {
			return errMediaType
		}
	}
	return nil
}

// isJSONMediaType reports whether a lowercased media type without
// parameters is application/json or application/<name>+json.
func isJSONMediaType(mediaType string) bool {
	subtype, ok := strings.CutPrefix(mediaType, "application/")
	if !ok {
		return false
	}
	name, ok := strings.CutSuffix(subtype, "+json")
	return subtype == "json" || ok && name != ""
}

// innermost returns the server's own ResponseWriter under the middleware's
// wrappers. http.MaxBytesReader needs it: on overflow it tells that writer
// to close the connection instead of reading the rest of an oversized body,
// and it does not look through Unwrap itself.
func innermost(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}
