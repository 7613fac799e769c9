package main

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// request is one operation a client performs; it returns an error when the
// answer was not the one expected, so a bad run cannot pass as a fast one.
type request func(ctx context.Context, client int) error

// Stats summarises one run.
type Stats struct {
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	// FirstError says what the first failed request got, so an error count
	// can be told from noise.
	FirstError string `json:"first_error,omitempty"`
}

// closedLoop runs `clients` goroutines, each sending its next request as soon
// as the previous one is answered, for d; it returns what they measured.
func closedLoop(ctx context.Context, clients int, d time.Duration, do request) Stats {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	latencies := make([][]time.Duration, clients)
	errs := make([]int, clients)
	var first sync.Once
	var firstErr string
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				t := time.Now()
				// Requests run on their own deadline, so the end of the run
				// does not cut the last one short and count it as an error.
				if err := do(context.WithoutCancel(ctx), c); err != nil {
					errs[c]++
					first.Do(func() { firstErr = err.Error() })
					continue
				}
				latencies[c] = append(latencies[c], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(latencies...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	s := Stats{Requests: len(all), RPS: float64(len(all)) / elapsed.Seconds(), FirstError: firstErr}
	for _, e := range errs {
		s.Errors += e
	}
	if len(all) > 0 {
		s.P50ms = ms(all[len(all)*50/100])
		s.P99ms = ms(all[min(len(all)-1, len(all)*99/100)])
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// median takes the middle value of one field over several runs.
func median(runs []Stats, field func(Stats) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = field(r)
	}
	return middle(v)
}

// middle is the middle value of v, or the mean of the two middle ones when
// v has an even number of values. It sorts v.
func middle(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	return (v[(n-1)/2] + v[n/2]) / 2
}
