package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"coco/sql/sqltest"
)

// The SQL in the README's engine section runs as written against the data
// `make run` seeds, and every query answers with at least one row.
func TestREADMEQueriesRunOnTheDemoData(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	section = section[strings.Index(section, "\n## The SQL engine"):]
	section = section[:strings.Index(section[1:], "\n## ")]
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d sql blocks in the README's engine section, want the analysts' and the operators'", len(blocks))
	}

	dbURL := sqltest.URL(t, sqltest.ServerURL(t))
	seedCounts(t, map[string]string{"DATABASE_URL": dbURL})
	pool := openTestPool(t, dbURL)
	ctx := context.Background()
	queries := 0
	for _, block := range blocks {
		for _, query := range statements(block[1]) {
			queries++
			rows, err := pool.Query(ctx, query)
			if err != nil {
				t.Errorf("%s\n: %v", query, err)
				continue
			}
			n := 0
			for rows.Next() {
				n++
			}
			if err := rows.Err(); err != nil {
				t.Errorf("%s\n: %v", query, err)
			} else if n == 0 {
				t.Errorf("%s\n: no rows, want at least one on the demo data", query)
			}
		}
	}
	if queries < 8 {
		t.Errorf("ran %d queries from the README, want all of them (at least 8)", queries)
	}
}

// statements splits SQL at the semicolons that end a line, dropping
// comment lines.
func statements(sql string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.Lines(sql) {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	return out
}
