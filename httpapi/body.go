package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

var errBodyRead = &httpError{http.StatusBadRequest, "Could not read the request body"}

// readBody reads a JSON request body of at most limit bytes: the one reader
// of every route that takes a body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if err := checkJSONContentType(r); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(innermost(w), r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) {
			err = errBodyRead // the client went away or stalled mid-body
		}
		return nil, err
	}
	return body, nil
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
