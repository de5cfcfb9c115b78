package benchmarks

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang/snappy"
)

// TestDirectionSchedule checks the link arithmetic on fixed times: chunks
// queue one after another at the bandwidth, their propagation delays
// overlap (a pipe, not one delay per chunk), connections share the
// bandwidth, and nothing leaves before notBefore.
func TestDirectionSchedule(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	type send struct {
		at        time.Duration // after t0
		notBefore time.Duration // after t0; 0 for none
		n         int
	}
	for _, tc := range []struct {
		name       string
		oneWay     time.Duration
		bps        int64
		give       []send
		wantSent   []time.Duration
		wantArrive []time.Duration
	}{
		{
			name: "delay only: chunks arrive together", oneWay: 25 * ms,
			give:     []send{{at: 0, n: 1000}, {at: 0, n: 1000}, {at: 1 * ms, n: 1000}},
			wantSent: []time.Duration{0, 0, 1 * ms}, wantArrive: []time.Duration{25 * ms, 25 * ms, 26 * ms},
		},
		{
			// 8 Mbit/s: 1 000 bytes take 1 ms.
			name: "bandwidth: transmissions queue, delays overlap", oneWay: 25 * ms, bps: 8_000_000,
			give:     []send{{at: 0, n: 1000}, {at: 0, n: 2000}, {at: 0, n: 1000}},
			wantSent: []time.Duration{1 * ms, 3 * ms, 4 * ms}, wantArrive: []time.Duration{26 * ms, 28 * ms, 29 * ms},
		},
		{
			name: "an idle link starts afresh", oneWay: 5 * ms, bps: 8_000_000,
			give:     []send{{at: 0, n: 1000}, {at: 10 * ms, n: 1000}},
			wantSent: []time.Duration{1 * ms, 11 * ms}, wantArrive: []time.Duration{6 * ms, 16 * ms},
		},
		{
			name: "handshake: nothing leaves before notBefore", oneWay: 5 * ms,
			give:     []send{{at: 0, notBefore: 10 * ms, n: 10}, {at: 12 * ms, notBefore: 10 * ms, n: 10}},
			wantSent: []time.Duration{10 * ms, 12 * ms}, wantArrive: []time.Duration{15 * ms, 17 * ms},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &direction{oneWay: tc.oneWay, bps: tc.bps}
			for i, s := range tc.give {
				var notBefore time.Time
				if s.notBefore > 0 {
					notBefore = t0.Add(s.notBefore)
				}
				sent, arrive := d.schedule(t0.Add(s.at), notBefore, s.n)
				if got := sent.Sub(t0); got != tc.wantSent[i] {
					t.Errorf("chunk %d sent at %v, want %v", i, got, tc.wantSent[i])
				}
				if got := arrive.Sub(t0); got != tc.wantArrive[i] {
					t.Errorf("chunk %d arrives at %v, want %v", i, got, tc.wantArrive[i])
				}
			}
		})
	}
}

// TestDelayProxy sends requests through a proxy to an echo server and
// checks that the body comes back intact and no sooner than the link
// allows: a new connection pays the handshake and a round trip, a reused
// one a round trip, and each direction the body's transmission time. These
// are lower bounds, which the proxy guarantees however slow the machine.
func TestDelayProxy(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(echo.Close)
	for _, tc := range []struct {
		name string
		link Link
		size int
	}{
		{name: "no delay, a body of many chunks", link: Link{}, size: 3 << 20},
		{name: "rtt 30ms", link: Link{RTT: 30 * time.Millisecond}, size: 100},
		{name: "rtt 30ms, a body of many chunks", link: Link{RTT: 30 * time.Millisecond}, size: 1 << 20},
		{name: "40 Mbit/s", link: Link{Bandwidth: 40_000_000}, size: 256 << 10},
		{name: "rtt 10ms, 40 Mbit/s", link: Link{RTT: 10 * time.Millisecond, Bandwidth: 40_000_000}, size: 256 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewDelayProxy(echo.Listener.Addr().String(), tc.link)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := p.Close(); err != nil {
					t.Error(err)
				}
			})
			client := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
			t.Cleanup(client.CloseIdleConnections)
			body := make([]byte, tc.size)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range body {
				body[i] = byte(rng.Uint32())
			}
			// Both ways, the body's bits at the bandwidth.
			transmit := time.Duration(0)
			if tc.link.Bandwidth > 0 {
				transmit = time.Duration(float64(2*tc.size*8) / float64(tc.link.Bandwidth) * float64(time.Second))
			}
			for i, want := range []time.Duration{2*tc.link.RTT + transmit, tc.link.RTT + transmit} {
				start := time.Now()
				resp, err := client.Post("http://"+p.Addr()+"/echo", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				took := time.Since(start)
				if err != nil {
					t.Fatalf("request %d: reading the answer: %v", i, err)
				}
				if !bytes.Equal(got, body) {
					t.Fatalf("request %d: %d bytes came back, not the %d sent", i, len(got), len(body))
				}
				if took < want {
					t.Errorf("request %d took %v, less than the link's %v", i, took, want)
				}
			}
		})
	}
}

// TestDelayProxyClose checks that Close ends open connections and waits for
// the proxy's goroutines, and that the proxy then refuses.
func TestDelayProxyClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	p, err := NewDelayProxy(srv.Listener.Addr().String(), Link{RTT: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	resp, err := client.Get("http://" + p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // the connection stays open, idle
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get("http://" + p.Addr()); err == nil {
		t.Error("a request through a closed proxy succeeded")
	}
}

func TestNewDelayProxyRejectsNegativeLink(t *testing.T) {
	for _, link := range []Link{{RTT: -time.Millisecond}, {Bandwidth: -1}} {
		if p, err := NewDelayProxy("127.0.0.1:1", link); err == nil {
			p.Close()
			t.Errorf("NewDelayProxy(%+v) succeeded", link)
		}
	}
}

// TestReceiverDelayed checks the path the latency benchmarks take: a proxy
// made by the receiver process delays a remote-write request by the RTT
// (twice on a new connection), and the receiver counts it.
func TestReceiverDelayed(t *testing.T) {
	rcv := receiver(t)
	const rtt = 40 * time.Millisecond
	url, err := rcv.Delayed(Link{RTT: rtt})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := rcv.Delayed(Link{RTT: rtt}); err != nil || again != url {
		t.Errorf("the same link again: %q, %v; want the same proxy %q", again, err, url)
	}
	if _, err := rcv.Delayed(Link{RTT: -rtt}); err == nil {
		t.Error("a negative RTT was accepted")
	}
	before, err := rcv.Stats()
	if err != nil {
		t.Fatal(err)
	}
	body := snappy.Encode(nil, []byte("a remote-write payload"))
	client := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	t.Cleanup(client.CloseIdleConnections)
	for i, want := range []time.Duration{2 * rtt, rtt} {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url+"/api/v1/write", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Encoding", "snappy")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if took := time.Since(start); took < want {
			t.Errorf("request %d took %v, less than %v", i, took, want)
		}
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("request %d: status %d, want 204", i, resp.StatusCode)
		}
	}
	after, err := rcv.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if d := after.Sub(before); d.Requests != 2 || d.WireBytes != int64(2*len(body)) {
		t.Errorf("the receiver counted %+v, want 2 requests of %d bytes", d, len(body))
	}
}
