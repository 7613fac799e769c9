package httpapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/julienschmidt/httprouter"
)

// openAPIDoc describes every route. It is a hand-written file rather than
// generated from the handlers, so it is reviewed like code; docs_test.go
// checks that it and routes() name the same operations.
//
//go:embed openapi.json
var openAPIDoc []byte

//go:embed docs.html
var docsTemplate string

func (s *Server) handleOpenAPI(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeBody(w, http.StatusOK, openAPIDoc)
}

// handleDocs serves openapi.json as one HTML page rendered here, with no
// script and nothing fetched from a CDN, so it works offline and under a
// Content-Security-Policy that forbids everything but its inline style.
func (s *Server) handleDocs(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	page, err := docsPage()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(page)
}

// docsPage renders the page once: the document is embedded and never changes.
var docsPage = sync.OnceValues(func() ([]byte, error) {
	if !json.Valid(openAPIDoc) {
		return nil, fmt.Errorf("openapi.json is not valid JSON")
	}
	tmpl, err := template.New("docs").Parse(docsTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse docs.html: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, newDocView(openAPIDoc)); err != nil {
		return nil, fmt.Errorf("render docs.html: %w", err)
	}
	return buf.Bytes(), nil
})

// The document is walked as raw JSON, not decoded into maps, so schemas and
// examples are shown with their keys in the order they were written (the
// dashboard's key order is part of its contract).
type node = json.RawMessage

// docView is what docs.html shows of the OpenAPI document.
type docView struct {
	Title, Version, Description string
	Operations                  []docOperation
	Schemas                     []docSchema
}

type docOperation struct {
	ID, Method, Path, Summary, Description string
	Security                               []string
	Parameters                             []docParameter
	Request                                *docBody
	Responses                              []docResponse
}

type docParameter struct {
	Name, In, Description string
	Required              bool
}

type docResponse struct {
	Code, Description string
	Headers           []string
	Body              *docBody
}

// docBody is a request or response body: a named schema (linked to the
// Schemas section) or an inline one, and an example when the document has it.
type docBody struct {
	MediaType, SchemaName, Schema, Example string
}

type docSchema struct {
	Name, JSON string
}

var httpMethods = []string{"get", "post", "put", "patch", "delete"}

func newDocView(doc node) docView {
	root := object(doc)
	info := object(root["info"])
	v := docView{Title: str(info["title"]), Version: str(info["version"]), Description: str(info["description"])}
	paths := object(root["paths"])
	for _, path := range sortedKeys(paths) {
		item := object(paths[path])
		for _, method := range httpMethods {
			if op, ok := item[method]; ok {
				v.Operations = append(v.Operations, newDocOperation(root, strings.ToUpper(method), path, object(op)))
			}
		}
	}
	schemas := object(object(root["components"])["schemas"])
	for _, name := range sortedKeys(schemas) {
		v.Schemas = append(v.Schemas, docSchema{Name: name, JSON: pretty(schemas[name])})
	}
	return v
}

func newDocOperation(root map[string]node, method, path string, op map[string]node) docOperation {
	o := docOperation{
		ID: str(op["operationId"]), Method: method, Path: path,
		Summary: str(op["summary"]), Description: str(op["description"]),
	}
	for _, req := range list(op["security"]) {
		o.Security = append(o.Security, sortedKeys(object(req))...)
	}
	for _, p := range list(op["parameters"]) {
		param := resolve(root, object(p))
		var required bool
		_ = json.Unmarshal(param["required"], &required)
		o.Parameters = append(o.Parameters, docParameter{
			Name: str(param["name"]), In: str(param["in"]), Description: str(param["description"]), Required: required,
		})
	}
	o.Request = newDocBody(resolve(root, object(op["requestBody"])))
	responses := object(op["responses"])
	for _, code := range sortedKeys(responses) {
		resp := resolve(root, object(responses[code]))
		o.Responses = append(o.Responses, docResponse{
			Code: code, Description: str(resp["description"]),
			Headers: sortedKeys(object(resp["headers"])), Body: newDocBody(resp),
		})
	}
	return o
}

// newDocBody describes the first content type of a request body or
// response, or returns nil when it has none.
func newDocBody(item map[string]node) *docBody {
	content := object(item["content"])
	mediaTypes := sortedKeys(content)
	if len(mediaTypes) == 0 {
		return nil
	}
	c := object(content[mediaTypes[0]])
	b := &docBody{MediaType: mediaTypes[0]}
	if ref := str(object(c["schema"])["$ref"]); ref != "" {
		b.SchemaName = strings.TrimPrefix(ref, "#/components/schemas/")
	} else if c["schema"] != nil {
		b.Schema = pretty(c["schema"])
	}
	if c["example"] != nil {
		b.Example = pretty(c["example"])
	}
	return b
}

// resolve follows a local "$ref" such as "#/components/responses/TooLarge".
func resolve(root, item map[string]node) map[string]node {
	ref := str(item["$ref"])
	if ref == "" {
		return item
	}
	m := root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m = object(m[part])
	}
	return m
}

func object(n node) map[string]node {
	var m map[string]node
	_ = json.Unmarshal(n, &m)
	return m
}

func list(n node) []node {
	var l []node
	_ = json.Unmarshal(n, &l)
	return l
}

func str(n node) string {
	var s string
	_ = json.Unmarshal(n, &s)
	return s
}

func sortedKeys(m map[string]node) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// pretty indents n, keeping its keys in their written order.
func pretty(n node) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, n, "", "  "); err != nil {
		return string(n)
	}
	return buf.String()
}
