package httpapi

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
)

// openAPIDoc describes every route. It is a hand-written file rather than
// generated from the handlers, so it is reviewed like code; docs_test.go
// checks that it and routes() name the same operations.
//
//go:embed openapi.json
var openAPIDoc []byte

// docsFiles is the /docs page: docs.html and docs.js, which start Swagger UI
// on /openapi.json, and Swagger UI itself, vendored in swaggerui/ (see its
// README.md) with the licences that must ship with it.
//
//go:embed docs.html docs.js
//go:embed swaggerui/swagger-ui-bundle.js swaggerui/swagger-ui.css
//go:embed swaggerui/LICENSE swaggerui/NOTICE swaggerui/swagger-ui-bundle.js.LICENSE.txt
var docsFiles embed.FS

// docsETags names each file in docsFiles by its content, so a browser that
// comes back to /docs revalidates Swagger UI's 1.9 MB with a 304 instead of
// downloading it again.
var docsETags = func() map[string]string {
	tags := map[string]string{}
	err := fs.WalkDir(docsFiles, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := docsFiles.ReadFile(name)
		sum := sha256.Sum256(body)
		tags[name] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return err
	})
	if err != nil {
		panic("embedded docs: " + err.Error())
	}
	return tags
}()

// docsCSP is the least Swagger UI needs, measured in Chromium: its script and
// styles from this origin (it sets styles through the DOM, which CSP allows,
// so no 'unsafe-inline'; and it needs no eval), its icons as data: images,
// and fetch to this origin for /openapi.json and "Try it out". A server in
// openapi.json on another origin would need that origin in connect-src.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) handleOpenAPI(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeBody(w, http.StatusOK, openAPIDoc)
}

// handleDocs serves the page at /docs and the files it loads under /docs/,
// each at its path in docsFiles.
func (s *Server) handleDocs(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	name := "docs.html"
	if r.URL.Path != "/docs" {
		name = strings.TrimPrefix(r.URL.Path, "/docs/")
	}
	f, err := docsFiles.Open(name)
	if err != nil {
		s.notFound(w, r)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Security-Policy", docsCSP)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", docsETags[name])
	// ServeContent answers a matching If-None-Match with 304, and sets the
	// type from the name's extension, or sniffs it (text/plain for LICENSE
	// and NOTICE). An embedded file is a Seeker.
	http.ServeContent(w, r, name, time.Time{}, f.(io.ReadSeeker))
}
