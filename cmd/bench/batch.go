package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"coco/sql/store"
)

// batchShape is a batch scenario: size sessions spread over users users.
type batchShape struct{ size, users int }

var batchShapes = []batchShape{{100, 10}, {1000, 100}}

// BatchResult is a batch scenario with the sessions it stored per second.
type BatchResult struct {
	Result
	SessionsPerSecond float64 `json:"sessions_per_second"`
}

// batches measures batch ingest at 8 clients, through HTTP and as the same
// SQL called directly, against single ingests in the same run, then coco's
// peak memory while 8 clients send batches of about 1 MiB.
func (b bench) batches(ctx context.Context, t target, proc *cocoProcess) ([]BatchResult, float64, error) {
	const clients = 8
	single := BatchResult{Result: b.measure(ctx, "single ingest http", clients, t.ingestHTTP("bwriter", writers))}
	single.SessionsPerSecond = single.RPS
	out := []BatchResult{single}
	for _, shape := range batchShapes {
		name := fmt.Sprintf("batch %d over %d users", shape.size, shape.users)
		viaHTTP := BatchResult{Result: b.measure(ctx, name+" http", clients, t.batchHTTP(shape, 0))}
		viaSQL := BatchResult{Result: b.measure(ctx, name+" sql", clients, t.batchSQL(shape))}
		for _, r := range []*BatchResult{&viaHTTP, &viaSQL} {
			r.SessionsPerSecond = r.RPS * float64(shape.size)
		}
		versus(&viaHTTP.Result, viaSQL.Result, viaHTTP.SessionsPerSecond/viaSQL.SessionsPerSecond)
		versus(&viaSQL.Result, single.Result, viaSQL.SessionsPerSecond/single.SessionsPerSecond)
		out = append(out, viaHTTP, viaSQL)
	}
	// Items padded with an ignored field to make each body about 1 MiB.
	big := BatchResult{Result: b.measure(ctx, "batch of 1 MiB http", clients, t.batchHTTP(batchShape{1000, 100}, 850))}
	big.SessionsPerSecond = big.RPS * 1000
	versus(&big.Result, single.Result, big.SessionsPerSecond/single.SessionsPerSecond)
	out = append(out, big)
	peak, err := proc.peakRSS()
	return out, peak, err
}

// nextBatch is size new sessions of shape.users users (bwriter-N), each
// item padded with an ignored field of pad bytes.
func nextBatch(shape batchShape) []store.Session {
	first := int(sessionSeq.Load()) % writers
	out := make([]store.Session, shape.size)
	for i := range out {
		s := nextSession("bwriter", writers)
		s.UserExternalID = fmt.Sprintf("bwriter-%d", (first+i%shape.users)%writers)
		out[i] = s
	}
	return out
}

func (t target) batchHTTP(shape batchShape, pad int) request {
	padding := ""
	if pad > 0 {
		padding = fmt.Sprintf(`,"note":%q`, strings.Repeat("x", pad))
	}
	return func(_ context.Context, client int) error {
		var body strings.Builder
		body.WriteString(`{"sessions":[`)
		for i, s := range nextBatch(shape) {
			if i > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"session_id":%q,"user_external_id":%q,"started_at":%q,"duration_seconds":%d,"sentiment_score":%g%s}`,
				s.SessionID, s.UserExternalID, s.StartedAt.Format(time.RFC3339), s.DurationSeconds, s.SentimentScore, padding)
		}
		body.WriteString(`]}`)
		req := fmt.Sprintf("POST /internal/ingest/session_summaries HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", t.host, ingestToken, body.Len(), body.String())
		_, err := t.expect(client, req, http.StatusOK)
		return err
	}
}

func (t target) batchSQL(shape batchShape) request {
	return func(ctx context.Context, _ int) error {
		outcomes, err := t.store.IngestBatch(ctx, nextBatch(shape))
		for _, o := range outcomes {
			if err == nil && o.Status != store.Stored {
				err = fmt.Errorf("batch item: %s", o.Status)
			}
		}
		return err
	}
}

func printBatches(w io.Writer, results []BatchResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tclients\treq/s\tsessions/s\tp50 ms\tp99 ms\terrors\tsessions/s ratio\tversus\t\n")
	for _, r := range results {
		ratio := ""
		if r.Versus != "" {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2f\t%.2f\t%d\t%s\t%s\t\n",
			r.Scenario, r.Clients, r.RPS, r.SessionsPerSecond, r.P50ms, r.P99ms, r.Errors, ratio, r.Versus)
	}
	tw.Flush()
	for _, r := range results {
		printFirstErrors(w, []Result{r.Result})
	}
}
