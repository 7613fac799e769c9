package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"unicode/utf8"
)

// Request bodies are read key by key rather than with json.Unmarshal into a
// struct, because encoding/json would silently accept what the contract
// rejects: keys in another letter case ("Session_ID"), a key given twice
// (the last one wins), and text after the object.

var errMissing = &problem{"missing", "Field required"}

var errNotObject = &problem{"model_attributes_type", "Input should be a valid dictionary or object to extract fields from"}

// utf8BOM may open a body: Python's JSON parser, which the original service
// used, skips it, so devices written against it may send one.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// extraKeys says what readObject does with a key that is not a field.
type extraKeys bool

const (
	// ignoreExtra: devices add fields before the server knows them.
	ignoreExtra extraKeys = false
	// refuseExtra: a typo (timezone for time_zone) must not pass silently.
	refuseExtra extraKeys = true
)

var errExtra = &problem{"extra_forbidden", "Extra inputs are not permitted"}

// readObject checks that raw is exactly one JSON object and returns the raw
// values of its keys that are in fields. loc is where raw sits in the
// request, e.g. ["body"] or ["body", "sessions", 3], and prefixes every
// error's location. A nil map means raw as a whole was unusable; the errors
// then say why. Key problems (a key given twice, a field name in another
// letter case, an unknown key when extra is refuseExtra) come back alongside
// a map, so field errors are reported with them.
func readObject(raw []byte, loc []any, fields []string, extra extraKeys) (map[string]json.RawMessage, validationErrors) {
	raw = bytes.TrimPrefix(raw, utf8BOM)
	if !utf8.Valid(raw) {
		return nil, validationErrors{{
			Loc: within(loc, invalidUTF8Offset(raw)), Type: "json_invalid",
			Msg: "JSON decode error: invalid UTF-8",
		}}
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, validationErrors{errMissing.at(loc)}
	}
	// Validating the whole value first also rejects anything after the
	// object; the walk below may then trust the syntax.
	if !json.Valid(raw) {
		var syntaxErr *json.SyntaxError
		if err := json.Unmarshal(raw, new(json.RawMessage)); errors.As(err, &syntaxErr) {
			return nil, validationErrors{{
				Loc: within(loc, syntaxErrorIndex(syntaxErr, raw)), Type: "json_invalid",
				Msg: "JSON decode error: " + syntaxErr.Error(),
			}}
		}
		return nil, validationErrors{{Loc: loc, Type: "json_invalid", Msg: "JSON decode error"}}
	}
	if trimmed[0] != '{' {
		return nil, validationErrors{errNotObject.at(loc)}
	}

	var errs validationErrors
	values := make(map[string]json.RawMessage, len(fields))
	seen := make(map[string]int)
	for rawKey, value := range members(trimmed) {
		var key string
		if err := json.Unmarshal(rawKey, &key); err != nil {
			return nil, validationErrors{{Loc: loc, Type: "json_invalid", Msg: "JSON decode error"}}
		}
		seen[key]++
		switch {
		case seen[key] == 2:
			errs = append(errs, fieldError{
				Loc: within(loc, key), Type: "duplicate_key",
				Msg: "Key given more than once; send each field once",
			})
		case seen[key] > 2:
			// reported once already
		case isField(key, fields):
			values[key] = value
		default:
			if f := caseVariantOf(key, fields); f != "" {
				errs = append(errs, fieldError{
					Loc: within(loc, key), Type: "extra_forbidden",
					Msg: fmt.Sprintf("Field names are case-sensitive: did you mean %q?", f),
				})
			} else if extra == refuseExtra {
				errs = append(errs, errExtra.at(loc, key))
			}
		}
	}
	return values, errs
}

// members yields the keys (quoted) and values of the valid JSON object obj,
// as slices of it: no copy, so a large body costs no second buffer.
func members(obj []byte) iter.Seq2[[]byte, json.RawMessage] {
	return func(yield func([]byte, json.RawMessage) bool) {
		i := skipSpace(obj, 1) // past the {
		for i < len(obj) && obj[i] == '"' {
			keyEnd := valueEnd(obj, i)
			j := skipSpace(obj, keyEnd) + 1 // past the :
			j = skipSpace(obj, j)
			end := valueEnd(obj, j)
			if !yield(obj[i:keyEnd], obj[j:end]) {
				return
			}
			i = skipSpace(obj, end)
			if i < len(obj) && obj[i] == ',' {
				i = skipSpace(obj, i+1)
			}
		}
	}
}

// elements yields the elements of the valid JSON array arr, as slices of it.
func elements(arr []byte) iter.Seq[json.RawMessage] {
	return func(yield func(json.RawMessage) bool) {
		i := skipSpace(arr, 1) // past the [
		for i < len(arr) && arr[i] != ']' {
			end := valueEnd(arr, i)
			if !yield(arr[i:end]) {
				return
			}
			i = skipSpace(arr, end)
			if i < len(arr) && arr[i] == ',' {
				i = skipSpace(arr, i+1)
			}
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value that starts at b[i]
// in valid JSON: a string, an object or array (its brackets counted outside
// strings), or a number or literal (up to the next delimiter).
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = valueEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && !bytes.ContainsRune([]byte(",}] \t\n\r"), rune(b[j])) {
		j++
	}
	return j
}

// syntaxErrorIndex turns encoding/json's offset (the bytes read, including
// the offending one) into the index of the offending byte, which is what
// FastAPI reports from Python's JSONDecodeError.pos. At the end of the input
// both are the length of the body.
func syntaxErrorIndex(err *json.SyntaxError, body []byte) int64 {
	if err.Offset > 0 && err.Offset <= int64(len(body)) && !strings.Contains(err.Error(), "unexpected end") {
		return err.Offset - 1
	}
	return err.Offset
}

func isField(key string, fields []string) bool {
	for _, f := range fields {
		if key == f {
			return true
		}
	}
	return false
}

// caseVariantOf names the field that key spells in another letter case, or
// returns "".
func caseVariantOf(key string, fields []string) string {
	for _, f := range fields {
		if strings.EqualFold(key, f) {
			return f
		}
	}
	return ""
}

func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}
