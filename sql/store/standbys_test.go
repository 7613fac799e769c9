package store

import (
	"testing"
	"time"
)

func TestLagBehind(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	steps := []struct {
		name               string
		at                 time.Time
		received, replayed int64
		want               time.Duration
	}{
		{"caught up", sec(0), 100, 100, 0},
		{"idle for an hour: still caught up", sec(3600), 100, 100, 0},
		{"a write arrives, not replayed yet", sec(3601), 200, 100, 0},
		{"replay stuck, more arrives", sec(3602), 300, 100, time.Second},
		{"still stuck", sec(3605), 300, 100, 4 * time.Second},
		{"the first write replayed, the second not", sec(3606), 300, 200, 4 * time.Second},
		{"all replayed", sec(3607), 300, 300, 0},
		{"stuck again", sec(3608), 400, 300, 0},
		{"rebuilt from another primary meanwhile", sec(3609), 50, 40, 0},
		{"behind on the new primary", sec(3611), 50, 40, 2 * time.Second},
	}
	var sb standby
	for _, s := range steps {
		if got := sb.lagBehind(s.at, s.received, s.replayed); got != s.want {
			t.Errorf("%s: lag %v, want %v", s.name, got, s.want)
		}
	}
}
