package main

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// connLimiter caps the client connections coco holds open. Each costs about
// 20 KiB even when idle (buffers and a goroutine), so an unbounded number of
// idle keep-alive sockets would exhaust memory or file descriptors and take
// every request down with them. At the cap, Accept waits, so new
// connections queue in the kernel's backlog instead of being refused; near
// it, connections that hold a slot without a request in flight are closed
// (an idle keep-alive one at once, a new one that has sent nothing within
// newConnGrace), so the queue moves. Requests in flight are never cut.
type connLimiter struct {
	slots     chan struct{} // one token per open connection
	highWater int           // from here on, idle connections are closed

	mu    sync.Mutex
	conns map[net.Conn]connState
}

type connState struct {
	state http.ConnState
	since time.Time
}

// newConnGrace is how long, near the cap, a new connection may stay silent:
// a client that means to send a request sends it within a round trip.
const newConnGrace = 250 * time.Millisecond

func newConnLimiter(max int) *connLimiter {
	return &connLimiter{
		slots:     make(chan struct{}, max),
		highWater: max - max/10,
		conns:     make(map[net.Conn]connState),
	}
}

// Listen wraps ln so that Accept respects the cap.
func (l *connLimiter) Listen(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, l: l}
}

type limitedListener struct {
	net.Listener
	l *connLimiter
}

func (ln *limitedListener) Accept() (net.Conn, error) {
	ln.l.acquire()
	c, err := ln.Listener.Accept()
	if err != nil {
		<-ln.l.slots
		return nil, err
	}
	if len(ln.l.slots) >= ln.l.highWater {
		ln.l.shed()
	}
	return &limitedConn{Conn: c, release: sync.OnceFunc(func() { <-ln.l.slots })}, nil
}

// acquire takes a slot, shedding idle connections while it waits for one.
func (l *connLimiter) acquire() {
	select {
	case l.slots <- struct{}{}:
		return
	default:
	}
	tick := time.NewTicker(newConnGrace / 2)
	defer tick.Stop()
	for {
		l.shed()
		select {
		case l.slots <- struct{}{}:
			return
		case <-tick.C:
		}
	}
}

// shed closes the connections that hold a slot without serving a request:
// idle keep-alive ones, and new ones silent for longer than newConnGrace.
func (l *connLimiter) shed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c, s := range l.conns {
		if s.state == http.StateIdle || s.state == http.StateNew && time.Since(s.since) > newConnGrace {
			c.Close()
			delete(l.conns, c)
		}
	}
}

// ConnState is the http.Server hook that tells the limiter what each
// connection is doing.
func (l *connLimiter) ConnState(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	case http.StateIdle:
		if len(l.slots) >= l.highWater {
			c.Close()
			delete(l.conns, c)
			return
		}
		fallthrough
	default:
		l.conns[c] = connState{state, time.Now()}
	}
}

// limitedConn gives its slot back when closed, by the server or the limiter.
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
