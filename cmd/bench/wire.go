package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// wire sends HTTP/1.1 requests over one keep-alive connection per
// closed-loop client. The load generator shares the machine's cores with
// coco and PostgreSQL, so it writes pre-formatted requests and reads only
// the status line, headers and a Content-Length body, as wrk does, rather
// than pay for net/http's client: that cost would be charged to coco.
type wire struct {
	addr  string // host:port
	mu    sync.Mutex
	conns map[int]*wireConn
}

type wireConn struct {
	net.Conn
	r *bufio.Reader
}

func newWire(addr string) *wire { return &wire{addr: addr, conns: map[int]*wireConn{}} }

// reply is what a test needs of a response.
type reply struct {
	status int
	etag   string
}

// roundTrip sends req on client's connection, dialling it if needed, and
// reads the answer. After an error the connection is dropped.
func (w *wire) roundTrip(client int, req []byte) (reply, error) {
	w.mu.Lock()
	c := w.conns[client]
	w.mu.Unlock()
	if c == nil {
		nc, err := net.Dial("tcp", w.addr)
		if err != nil {
			return reply{}, err
		}
		c = &wireConn{Conn: nc, r: bufio.NewReaderSize(nc, 4096)}
		w.mu.Lock()
		w.conns[client] = c
		w.mu.Unlock()
	}
	rep, err := c.exchange(req)
	if err != nil {
		c.Close()
		w.mu.Lock()
		delete(w.conns, client)
		w.mu.Unlock()
	}
	return rep, err
}

func (c *wireConn) exchange(req []byte) (reply, error) {
	if _, err := c.Write(req); err != nil {
		return reply{}, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return reply{}, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return reply{}, fmt.Errorf("bad status line %q", line)
	}
	var rep reply
	if rep.status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return reply{}, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return reply{}, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return reply{}, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("ETag")):
			rep.etag = string(value)
		}
	}
	if rep.status == 304 || rep.status == 204 {
		length = 0
	}
	if length < 0 {
		return reply{}, errors.New("response without Content-Length")
	}
	_, err = c.r.Discard(length)
	return rep, err
}

func (w *wire) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, c := range w.conns {
		c.Close()
		delete(w.conns, k)
	}
}
