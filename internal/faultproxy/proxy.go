// Package faultproxy is a loopback TCP proxy for fault tests: it forwards
// bytes between clients and one upstream server and, on request, delays the
// server's replies (the server has run the command; its reply is late, as
// after a stall or a network hiccup), holds them back altogether (a hung
// server), or refuses new connections and cuts the open ones (a server that
// went away).
//
// Delaying replies past a client's read timeout is how the tests make a
// command run on the server while the client sees a timeout and retries: the
// case every Redis operation of repocache must survive.
package faultproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections from Addr to an upstream address.
type Proxy struct {
	upstream string
	ln       net.Listener

	delay   atomic.Int64 // nanoseconds added before each reply chunk
	next    atomic.Int64 // reply chunks still to delay by nextD
	nextD   atomic.Int64
	refuse  atomic.Bool
	holdMu  sync.Mutex
	hold    chan struct{} // non-nil while replies are held back
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	replies atomic.Int64 // reply chunks forwarded
	closed  atomic.Bool
}

// Start listens on a free loopback port and forwards to upstream.
func Start(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{upstream: upstream, ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay delays every reply chunk from the server by d from now on (0
// forwards at once). Requests still reach the server immediately.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// DelayNext delays the next n reply chunks by d each, then forwards at
// once again: one late reply, for a command that ran but whose client gave
// up waiting and retries.
func (p *Proxy) DelayNext(n int, d time.Duration) {
	p.nextD.Store(int64(d))
	p.next.Store(int64(n))
}

// Hold stops forwarding replies until Release: the server looks hung.
func (p *Proxy) Hold() {
	p.holdMu.Lock()
	defer p.holdMu.Unlock()
	if p.hold == nil {
		p.hold = make(chan struct{})
	}
}

// Release forwards the held replies and the ones after them.
func (p *Proxy) Release() {
	p.holdMu.Lock()
	defer p.holdMu.Unlock()
	if p.hold != nil {
		close(p.hold)
		p.hold = nil
	}
}

// Refuse makes the proxy close new connections at once and, with cut, the
// open ones too: the server looks down. Refuse(false, false) accepts again.
func (p *Proxy) Refuse(refuse, cut bool) {
	p.refuse.Store(refuse)
	if cut {
		p.CutAll()
	}
}

// CutAll closes every open connection.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Replies counts the reply chunks forwarded so far.
func (p *Proxy) Replies() int64 { return p.replies.Load() }

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	err := p.ln.Close()
	p.Release()
	p.CutAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			_ = c.Close()
			continue
		}
		u, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c, u) {
			return
		}
		p.wg.Add(2)
		go p.pipe(u, c, false) // client → server: at once
		go p.pipe(c, u, true)  // server → client: faults apply
	}
}

func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) pipe(dst, src net.Conn, replies bool) {
	defer p.wg.Done()
	defer p.untrack(dst)
	defer p.untrack(src)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && replies {
			p.holdMu.Lock()
			h := p.hold
			p.holdMu.Unlock()
			if h != nil {
				<-h
			}
			d := time.Duration(p.delay.Load())
			if p.next.Load() > 0 && p.next.Add(-1) >= 0 {
				d += time.Duration(p.nextD.Load())
			}
			if d > 0 {
				time.Sleep(d) // the fault itself: a late reply
			}
			p.replies.Add(1)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a closed connection: both ends close
		}
	}
}
