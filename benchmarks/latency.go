package benchmarks

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Link describes the network path a DelayProxy emulates.
type Link struct {
	// RTT is the round-trip time the proxy adds: each direction delays
	// data by half of it, and a new connection's first bytes wait one RTT
	// more, as for a TCP handshake. TLS is not emulated.
	RTT time.Duration
	// Bandwidth is the capacity of each direction in bits per second,
	// shared by all connections of the proxy; 0 means unlimited.
	Bandwidth int64
}

// String names the link as the latency benchmarks do, e.g.
// "rtt=10ms,bw=100Mbit".
func (l Link) String() string {
	s := "rtt=" + l.RTT.String()
	if l.RTT == 0 {
		s = "rtt=0ms"
	}
	if l.Bandwidth > 0 {
		s += fmt.Sprintf(",bw=%gMbit", float64(l.Bandwidth)/1e6)
	}
	return s
}

// direction is one direction of a link: the bytes handed to it are sent one
// after another at its bandwidth, across all connections, and arrive half
// an RTT after they were sent.
type direction struct {
	oneWay time.Duration
	bps    int64 // 0: unlimited

	mu   sync.Mutex
	free time.Time // when the link has sent all it was given
}

// schedule hands n bytes to the link at now, but not before notBefore, and
// returns when they have been sent (the sender may hand over more then)
// and when they arrive. Transmissions queue one after another on the link,
// while their propagation delays overlap: the link is a pipe, not a chain
// of sleeps.
func (d *direction) schedule(now, notBefore time.Time, n int) (sent, arrive time.Time) {
	start := now
	if notBefore.After(start) {
		start = notBefore
	}
	if d.bps > 0 {
		d.mu.Lock()
		if d.free.After(start) {
			start = d.free
		}
		start = start.Add(time.Duration(float64(n) * 8 / float64(d.bps) * float64(time.Second)))
		d.free = start
		d.mu.Unlock()
	}
	return start, start.Add(d.oneWay)
}

// DelayProxy is a TCP proxy on 127.0.0.1 that forwards to a target address
// through an emulated Link: data arrives half an RTT after it was sent,
// limited by the bandwidth. The latency benchmarks put one in front of the
// receiver, in the receiver process (see Receiver.Delayed), so that its
// work is not booked to the library under test.
type DelayProxy struct {
	target   string
	link     Link
	up, down *direction // client to target, target to client
	ln       net.Listener
	done     chan struct{}

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// maxChunk is the most a proxy reads at once; a chunk is the unit of delay.
const maxChunk = 64 << 10

// chunksInFlight bounds the chunks read but not yet delivered, per
// direction of a connection: 8 MiB, more than a TCP window, so that the
// delay, not the buffer, limits a fast link.
const chunksInFlight = 128

// NewDelayProxy listens on a free port of 127.0.0.1 and forwards every
// connection to target through link.
func NewDelayProxy(target string, link Link) (*DelayProxy, error) {
	if link.RTT < 0 || link.Bandwidth < 0 {
		return nil, fmt.Errorf("delay proxy: link %+v: RTT and bandwidth must not be negative", link)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("delay proxy: listening: %w", err)
	}
	p := &DelayProxy{
		target: target,
		link:   link,
		up:     &direction{oneWay: link.RTT / 2, bps: link.Bandwidth},
		down:   &direction{oneWay: link.RTT - link.RTT/2, bps: link.Bandwidth},
		ln:     ln,
		done:   make(chan struct{}),
		conns:  map[net.Conn]struct{}{},
	}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's address, host:port.
func (p *DelayProxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines to end.
func (p *DelayProxy) Close() error {
	close(p.done)
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// track registers c to be closed by Close; it reports false, having
// closed c, when the proxy is closing.
func (p *DelayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		c.Close()
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *DelayProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *DelayProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		accepted := time.Now()
		if !p.track(client) {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			p.untrack(client)
			continue
		}
		if !p.track(server) {
			p.untrack(client)
			return
		}
		// The client's connect returned at once on loopback; over the
		// emulated link its first bytes could leave only after the
		// handshake, one RTT later.
		handshake := accepted.Add(p.link.RTT)
		var pair sync.WaitGroup
		pair.Add(2)
		p.wg.Add(3)
		go func() { defer p.wg.Done(); defer pair.Done(); p.pipe(client, server, p.up, handshake) }()
		go func() { defer p.wg.Done(); defer pair.Done(); p.pipe(server, client, p.down, time.Time{}) }()
		go func() {
			defer p.wg.Done()
			pair.Wait()
			p.untrack(client)
			p.untrack(server)
		}()
	}
}

// chunk is data read from one side, to be written to the other at arrive.
type chunk struct {
	b      []byte
	arrive time.Time
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, maxChunk); return &b }}

// pipe copies src to dst through d. A reader hands each chunk to the link
// and reads the next once the link has sent it (the sender's backpressure);
// a writer delivers each chunk when it arrives. At src's end, dst's write
// side is closed once everything has arrived.
func (p *DelayProxy) pipe(src, dst net.Conn, d *direction, notBefore time.Time) {
	queue := make(chan chunk, chunksInFlight)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(queue)
		for {
			bp := chunkPool.Get().(*[]byte)
			n, err := src.Read(*bp)
			if n > 0 {
				sent, arrive := d.schedule(time.Now(), notBefore, n)
				select {
				case queue <- chunk{b: (*bp)[:n], arrive: arrive}:
				case <-p.done:
					return
				}
				// Read on while the link is busy by up to a millisecond,
				// so that timer latency does not leave it idle.
				if !p.waitUntil(sent.Add(-time.Millisecond)) {
					return
				}
			} else {
				chunkPool.Put(bp)
			}
			if err != nil {
				return
			}
		}
	}()
	broken := false
	for c := range queue {
		if !broken && p.waitUntil(c.arrive) {
			if _, err := dst.Write(c.b); err != nil {
				broken = true
				src.Close() // the reader stops; the queue drains
			}
		}
		b := c.b[:cap(c.b)]
		chunkPool.Put(&b)
	}
	<-readerDone
	if tc, ok := dst.(*net.TCPConn); ok && !broken {
		_ = tc.CloseWrite()
	}
}

// waitUntil waits until t, and reports false if the proxy closed first.
func (p *DelayProxy) waitUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-p.done:
		return false
	}
}

// delayPath answers GET ?rtt=<duration>&bandwidth=<bits per second> with
// the URL of a DelayProxy in front of the receiver.
const delayPath = "/delay"

// errReceiverStopping answers a proxy asked for after the receiver began
// to stop.
var errReceiverStopping = errors.New("delay proxy: the receiver is stopping")

// delays are the DelayProxies in front of one receiver, one per Link,
// made on demand and kept until the receiver stops.
type delays struct {
	target string

	mu      sync.Mutex
	proxies map[Link]*DelayProxy
	closed  bool
}

func (d *delays) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var link Link
	var err error
	if v := q.Get("rtt"); v != "" {
		if link.RTT, err = time.ParseDuration(v); err != nil {
			http.Error(w, "rtt: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	if v := q.Get("bandwidth"); v != "" {
		if link.Bandwidth, err = strconv.ParseInt(v, 10, 64); err != nil {
			http.Error(w, "bandwidth: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	p, err := d.proxy(link)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "http://%s\n", p.Addr())
}

func (d *delays) proxy(link Link) (*DelayProxy, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errReceiverStopping
	}
	if p, ok := d.proxies[link]; ok {
		return p, nil
	}
	p, err := NewDelayProxy(d.target, link)
	if err != nil {
		return nil, err
	}
	if d.proxies == nil {
		d.proxies = map[Link]*DelayProxy{}
	}
	d.proxies[link] = p
	return p, nil
}

// Close closes every proxy.
func (d *delays) Close() error {
	d.mu.Lock()
	d.closed = true
	ps := d.proxies
	d.proxies = nil
	d.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// Delayed returns the URL of a DelayProxy in front of the receiver, in the
// receiver process, emulating link; the same link gives the same proxy.
// What is sent there reaches the receiver and is counted in its Stats.
func (r *Receiver) Delayed(link Link) (string, error) {
	u := fmt.Sprintf("%s%s?rtt=%s&bandwidth=%d", r.URL, delayPath, link.RTT, link.Bandwidth)
	resp, err := r.client.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(line, "http://127.0.0.1:") {
		return "", fmt.Errorf("asking the receiver for a delay proxy (%s): %s %q", link, resp.Status, line)
	}
	return line, nil
}
