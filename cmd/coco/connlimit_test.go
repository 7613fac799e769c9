package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"coco/sql/sqltest"
)

// rssKiB is the resident set size of process pid.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read the RSS from: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// Idle keep-alive sockets and sockets that never send a byte cost coco
// memory and file descriptors without doing anything. Far more of them than
// MAX_CONNECTIONS leave coco's memory near where it was, and a normal
// request made meanwhile is still answered promptly.
func TestConnectionCapHolds(t *testing.T) {
	t.Parallel()
	env := serveEnv(sqltest.URL(t, sqltest.ServerURL(t)))
	env["MAX_CONNECTIONS"] = "100"
	p := startServe(t, env)
	go func() {
		for range p.lines { // thousands of request lines nobody waits for
		}
	}()
	before := rssKiB(t, p.cmd.Process.Pid)

	const idle, silent = 1500, 500
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for i := w; i < idle+silent; i += 10 {
				c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
				if err != nil {
					t.Errorf("dial %d: %v", i, err)
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				if i >= idle {
					continue // a silent socket
				}
				// One request, then the socket stays open, idle.
				fmt.Fprintf(c, "GET /livez HTTP/1.1\r\nHost: coco\r\n\r\n")
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
					t.Errorf("request on connection %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()

	start := time.Now()
	rep, err := send(&http.Client{Timeout: 10 * time.Second}, http.MethodGet, p.base+"/api/dashboard/kid-1", dashboardToken, "")
	if err != nil || rep.status != http.StatusOK || time.Since(start) > 2*time.Second {
		t.Errorf("dashboard read with %d sockets open = %+v, %v after %s; want 200 within 2s", idle+silent, rep, err, time.Since(start))
	}
	// 100 connections cost about 2 MiB; the 2000 sockets, if coco held
	// them, about 40 MiB.
	if after := rssKiB(t, p.cmd.Process.Pid); after-before > 12<<10 {
		t.Errorf("RSS grew from %d KiB to %d KiB with %d sockets open; want the cap to bound it", before, after, idle+silent)
	}
}
