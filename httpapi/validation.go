package httpapi

import "fmt"

// fieldError is one entry of a FastAPI 422 body. Loc holds strings and
// numbers: a JSON syntax error's byte offset, or a batch item's index.
type fieldError struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

// validationErrors is a 422: every problem found in the request at once, so
// a device fixes its payload in one round trip.
type validationErrors []fieldError

func (v validationErrors) Error() string {
	return fmt.Sprintf("request validation failed (%d errors)", len(v))
}

// maxReportedErrors bounds a 422 body: a 64 KiB body of repeated keys could
// otherwise earn an answer several times its size.
const maxReportedErrors = 20

// capped returns at most maxReportedErrors entries, the last of which
// counts the ones left out.
func (v validationErrors) capped() validationErrors {
	if len(v) <= maxReportedErrors {
		return v
	}
	out := append(validationErrors{}, v[:maxReportedErrors-1]...)
	return append(out, fieldError{
		Loc:  []any{"body"},
		Type: "too_many_errors",
		Msg:  fmt.Sprintf("%d more errors not listed; fix the ones above first", len(v)-(maxReportedErrors-1)),
	})
}

func (v validationErrors) body() any {
	return struct {
		Detail []fieldError `json:"detail"`
	}{v.capped()}
}

// problem is what is wrong with one value, before it is given a location.
type problem struct {
	typ, msg string
}

// at places p at loc, a prefix such as ["body"], followed by more, such as
// the field's name.
func (p *problem) at(loc []any, more ...any) fieldError {
	return fieldError{Loc: within(loc, more...), Msg: p.msg, Type: p.typ}
}

// within returns the location loc followed by more, in a slice of its own.
func within(loc []any, more ...any) []any {
	return append(append(make([]any, 0, len(loc)+len(more)), loc...), more...)
}
