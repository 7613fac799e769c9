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
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi.json: %w", err)
	}
	tmpl, err := template.New("docs").Parse(docsTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse docs.html: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, newDocView(doc)); err != nil {
		return nil, fmt.Errorf("render docs.html: %w", err)
	}
	return buf.Bytes(), nil
})

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
	RequestSchema                          string
	Responses                              []docResponse
}

type docParameter struct {
	Name, In, Description string
	Required              bool
}

type docResponse struct {
	Code, Description, Schema string
}

type docSchema struct {
	Name, JSON string
}

var httpMethods = []string{"get", "post", "put", "patch", "delete"}

func newDocView(doc map[string]any) docView {
	info := object(doc["info"])
	v := docView{Title: str(info["title"]), Version: str(info["version"]), Description: str(info["description"])}
	paths := object(doc["paths"])
	for _, path := range sortedKeys(paths) {
		item := object(paths[path])
		for _, method := range httpMethods {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			v.Operations = append(v.Operations, newDocOperation(doc, strings.ToUpper(method), path, op))
		}
	}
	schemas := object(object(doc["components"])["schemas"])
	for _, name := range sortedKeys(schemas) {
		v.Schemas = append(v.Schemas, docSchema{Name: name, JSON: pretty(schemas[name])})
	}
	return v
}

func newDocOperation(doc map[string]any, method, path string, op map[string]any) docOperation {
	o := docOperation{
		ID: str(op["operationId"]), Method: method, Path: path,
		Summary: str(op["summary"]), Description: str(op["description"]),
	}
	for _, req := range list(op["security"]) {
		o.Security = append(o.Security, sortedKeys(object(req))...)
	}
	for _, p := range list(op["parameters"]) {
		param := resolve(doc, object(p))
		o.Parameters = append(o.Parameters, docParameter{
			Name: str(param["name"]), In: str(param["in"]),
			Description: str(param["description"]), Required: param["required"] == true,
		})
	}
	if body := resolve(doc, object(op["requestBody"])); body != nil {
		o.RequestSchema = pretty(jsonSchemaOf(body))
	}
	responses := object(op["responses"])
	for _, code := range sortedKeys(responses) {
		resp := resolve(doc, object(responses[code]))
		r := docResponse{Code: code, Description: str(resp["description"])}
		if schema := jsonSchemaOf(resp); schema != nil {
			r.Schema = pretty(schema)
		}
		o.Responses = append(o.Responses, r)
	}
	return o
}

// jsonSchemaOf returns the schema of a request body or response's first
// content type, or nil.
func jsonSchemaOf(item map[string]any) any {
	content := object(item["content"])
	for _, mediaType := range sortedKeys(content) {
		return object(content[mediaType])["schema"]
	}
	return nil
}

// resolve follows a local "$ref" such as "#/components/responses/TooLarge".
func resolve(doc, item map[string]any) map[string]any {
	ref, ok := item["$ref"].(string)
	if !ok {
		return item
	}
	node := doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		node = object(node[part])
	}
	return node
}

func object(v any) map[string]any { m, _ := v.(map[string]any); return m }
func list(v any) []any            { l, _ := v.([]any); return l }
func str(v any) string            { s, _ := v.(string); return s }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func pretty(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}
