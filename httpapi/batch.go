package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"coco/sql/store"
)

const fieldSessions = "sessions"

var (
	errSessionsList  = &problem{"list_type", "Input should be a valid list"}
	errSessionsEmpty = &problem{"too_short", "List should have at least 1 item"}
	errSessionsLong  = &problem{"too_long", fmt.Sprintf("List should have at most %d items; split the backlog into batches", MaxBatchSessions)}
)

// batchResult is one item's outcome. A valid item is named by its
// session_id, an invalid one by its index (its session_id may be what is
// wrong).
type batchResult struct {
	SessionID *string `json:"session_id,omitempty"`
	Index     *int    `json:"index,omitempty"`
	Status    string  `json:"status"`
	Detail    any     `json:"detail,omitempty"`
}

type batchBody struct {
	Results   []batchResult `json:"results"`
	OK        int           `json:"ok"`
	Duplicate int           `json:"duplicate"`
	Conflict  int           `json:"conflict"`
	Invalid   int           `json:"invalid"`
	Gone      int           `json:"gone"`
}

// handleIngestBatch stores a device's backlog: every valid item in one
// transaction (a database failure stores none, and the device resends the
// whole batch), with one result per item in input order.
func (s *Server) handleIngestBatch(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	body, err := readBody(w, r, maxBatchBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	results, sessions, err := decodeBatch(body, s.now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.batchSize.Observe(float64(len(results)))
	ctx, cancel := s.dbContext(r)
	defer cancel()
	outcomes, err := s.store.IngestBatch(ctx, sessions)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := batchBody{Results: results}
	next := 0 // the outcome of the next valid item
	for i := range out.Results {
		res := &out.Results[i]
		if res.Status == "" {
			o := outcomes[next]
			next++
			res.Status = string(o.Status)
			switch o.Status {
			case store.Conflict:
				res.Detail = (&store.ConflictError{Fields: o.Detail}).Error()
			case store.Invalid: // the database judges only time zones
				index := i
				res.Index, res.SessionID = &index, nil
				res.Detail = validationErrors{errZoneUnknown.at([]any{"body", fieldSessions, i}, o.Detail)}
			}
		}
		switch store.IngestStatus(res.Status) {
		case store.Stored:
			out.OK++
		case store.Duplicate:
			out.Duplicate++
		case store.Conflict:
			out.Conflict++
		case store.Invalid:
			out.Invalid++
		case store.Gone:
			out.Gone++
		}
	}
	for status, n := range map[store.IngestStatus]int{
		store.Stored: out.OK, store.Duplicate: out.Duplicate, store.Conflict: out.Conflict,
		store.Invalid: out.Invalid, store.Gone: out.Gone,
	} {
		s.metrics.ingested.WithLabelValues(string(status)).Add(float64(n))
	}
	writeJSON(w, http.StatusOK, out)
}

// decodeBatch reads the envelope {"sessions": [...]} and validates each
// item with the single ingest's rules. It returns one result per item (the
// invalid ones decided, with their errors located at ["body", "sessions",
// i, field]; the valid ones with an empty status) and the valid items'
// sessions, in order. The error is a 422 when the envelope itself is
// malformed.
func decodeBatch(body []byte, now time.Time) ([]batchResult, []store.Session, error) {
	values, errs := readObject(body, bodyLoc, []string{fieldSessions}, ignoreExtra)
	if values == nil || len(errs) > 0 {
		return nil, nil, errs
	}
	raw, ok := values[fieldSessions]
	if !ok || string(raw) == "null" {
		return nil, nil, validationErrors{errMissing.at(bodyLoc, fieldSessions)}
	}
	if raw[0] != '[' {
		return nil, nil, validationErrors{errSessionsList.at(bodyLoc, fieldSessions)}
	}
	// Slices of the body, which readObject has validated: no copies.
	var items []json.RawMessage
	for item := range elements(raw) {
		if len(items) == MaxBatchSessions {
			return nil, nil, validationErrors{errSessionsLong.at(bodyLoc, fieldSessions)}
		}
		items = append(items, item)
	}
	if len(items) == 0 {
		return nil, nil, validationErrors{errSessionsEmpty.at(bodyLoc, fieldSessions)}
	}

	results := make([]batchResult, len(items))
	var sessions []store.Session
	for i, item := range items {
		loc := []any{"body", fieldSessions, i}
		fields, errs := readObject(item, loc, summaryFields, ignoreExtra)
		var s store.Session
		if fields != nil {
			var fieldErrs validationErrors
			s, fieldErrs = sessionFromFields(fields, now, loc)
			errs = append(errs, fieldErrs...)
		}
		if len(errs) > 0 {
			index := i
			results[i] = batchResult{Index: &index, Status: string(store.Invalid), Detail: errs.capped()}
			continue
		}
		results[i].SessionID = &s.SessionID
		sessions = append(sessions, s)
	}
	return results, sessions, nil
}
