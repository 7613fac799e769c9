package httpapi

import (
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

var (
	errBodyRead = &httpError{http.StatusBadRequest, "Could not read the request body"}
	errGzip     = &httpError{http.StatusBadRequest, "Request body is not valid gzip"}
	errEncoding = &httpError{http.StatusUnsupportedMediaType, "Content-Encoding must be gzip, or absent"}
)

// readBody reads a JSON request body of at most limit bytes, after
// decompression when it is sent with Content-Encoding: gzip: the one reader
// of every route that takes a body. The limit is enforced while reading,
// so a zip bomb costs no more than limit bytes of memory.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if err := checkJSONContentType(r); err != nil {
		return nil, err
	}
	gzipped, err := isGzipped(r)
	if err != nil {
		return nil, err
	}
	if !gzipped {
		body, err := io.ReadAll(http.MaxBytesReader(innermost(w), r.Body, limit))
		if err != nil {
			return nil, bodyError(err, limit, errBodyRead)
		}
		return body, nil
	}
	// What arrives is bounded too: gzip grows data it cannot compress by a
	// little, never by more than this slack.
	zr, err := gzip.NewReader(http.MaxBytesReader(innermost(w), r.Body, limit+limit/64+1024))
	if err != nil {
		return nil, bodyError(err, limit, errGzip)
	}
	defer zr.Close()
	body, err := io.ReadAll(io.LimitReader(zr, limit+1))
	switch {
	case err != nil:
		return nil, bodyError(err, limit, errGzip)
	case int64(len(body)) > limit:
		// The rest of the body is not worth reading: end the connection
		// after the answer, as MaxBytesReader does.
		w.Header().Set("Connection", "close")
		return nil, &http.MaxBytesError{Limit: limit}
	}
	return body, nil
}

// bodyError is a 413 for a body past the limit, otherwise otherwise: the
// client went away or stalled mid-body, or its gzip stream is corrupt.
func bodyError(err error, limit int64, otherwise error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &http.MaxBytesError{Limit: limit}
	}
	return otherwise
}

// isGzipped reads Content-Encoding: absent (or identity), or gzip; anything
// else, several encodings included, is a 415.
func isGzipped(r *http.Request) (bool, error) {
	values := r.Header.Values("Content-Encoding")
	switch {
	case len(values) == 0:
		return false, nil
	case len(values) > 1:
		return false, errEncoding
	}
	switch strings.ToLower(strings.TrimSpace(values[0])) {
	case "", "identity":
		return false, nil
	case "gzip", "x-gzip":
		return true, nil
	}
	return false, errEncoding
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
