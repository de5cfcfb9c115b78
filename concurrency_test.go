package prwmetric

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// These tests cover WithMaxConcurrentRequests: the requests of one export
// go out side by side, their failures are counted exactly, and exports
// never overtake each other.

// gate holds requests until n have arrived, then lets them all go on.
type gate struct {
	mu      sync.Mutex
	n       int
	arrived int
	open    chan struct{}
}

func newGate(n int) *gate { return &gate{n: n, open: make(chan struct{})} }

// wait counts one arrival and blocks until n have arrived or ctx is done.
func (g *gate) wait(ctx context.Context) {
	g.mu.Lock()
	g.arrived++
	if g.arrived == g.n {
		close(g.open)
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-ctx.Done():
	}
}

// gaugeIndex is the value of the "i" label of a manyGauges series.
func gaugeIndex(t *testing.T, s series) int {
	t.Helper()
	for _, l := range s.Labels {
		if v, ok := strings.CutPrefix(l, "i="); ok {
			i, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return i
		}
	}
	t.Fatalf("series %v has no i label", s.Labels)
	return 0
}

// firstValue is the value of a request's first series, which names the
// request in manyGauges exports (series i has value i).
func firstValue(r received) float64 {
	if len(r.Series) == 0 || len(r.Series[0].Samples) == 0 {
		return -1
	}
	return r.Series[0].Samples[0].Value
}

// TestConcurrentFailureAccounting holds the five requests of an export
// until all are in flight, then fails the second and the fourth: exactly
// the series of the other three are delivered. The next export shows it:
// the delivered series' samples move 1 ms past the delivered ones (same
// timestamp), the failed ones' do not, and only delivered series that are
// gone get a staleness marker.
func TestConcurrentFailureAccounting(t *testing.T) {
	const perRequest, requests = 100, 5
	fail := map[float64]bool{100: true, 300: true} // requests 1 and 3
	var (
		mu   sync.Mutex
		hold *gate
	)
	rec := &recorder{}
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := rec.record(r)
		mu.Lock()
		g := hold
		mu.Unlock()
		if g != nil {
			g.wait(r.Context())
			if fail[firstValue(got)] {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	exp := newExporter(t, WithEndpoint(srv.URL+"/api/v1/write"), WithoutEnvironment(), WithLogger(discardLogger()),
		WithoutScopeInfo(), WithoutTargetInfo(), WithoutMetadata(),
		WithMaxSeriesPerRequest(perRequest), WithMaxConcurrentRequests(8))
	at := time.UnixMilli(1_700_000_000_000)

	hold = newGate(requests)
	err := exp.Export(context.Background(), manyGauges(perRequest*requests, at))
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Export = %v, want a *WriteError", err)
	}
	if we.Delivered != 300 || we.Series != 200 || we.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("WriteError: %d delivered, %d dropped, status %d; want 300, 200, 503", we.Delivered, we.Series, we.StatusCode)
	}
	first := rec.all()
	if len(first) != requests {
		t.Fatalf("%d requests, want %d: all were in flight", len(first), requests)
	}
	for _, r := range first {
		// Series in order within each request.
		for j, s := range r.Series {
			if want := firstValue(r) + float64(j); s.Samples[0].Value != want {
				t.Fatalf("request from %v: series %d has value %v, want %v", firstValue(r), j, s.Samples[0].Value, want)
			}
		}
	}

	// The next export has the first 300 series, at the same timestamp.
	mu.Lock()
	hold = nil
	mu.Unlock()
	before := time.Now().UnixMilli()
	if err := exp.Export(context.Background(), manyGauges(300, at)); err != nil {
		t.Fatalf("second Export: %v", err)
	}
	var markers []int
	samples := map[int]sample{}
	for _, r := range rec.all()[requests:] {
		for _, s := range r.Series {
			i := gaugeIndex(t, s)
			smp := s.Samples[0]
			if math.Float64bits(smp.Value) == math.Float64bits(staleNaN) {
				if smp.Millis < before {
					t.Errorf("marker of series %d at %d, before the export (%d)", i, smp.Millis, before)
				}
				markers = append(markers, i)
				continue
			}
			samples[i] = smp
		}
	}
	for i := range 300 {
		want := sample{Value: float64(i), Millis: at.UnixMilli() + 1} // past the delivered sample
		if i >= 100 && i < 200 {
			want.Millis = at.UnixMilli() // the receiver never got it
		}
		if samples[i] != want {
			t.Errorf("series %d: %+v, want %+v", i, samples[i], want)
		}
	}
	if len(samples) != 300 {
		t.Errorf("%d series with samples, want 300", len(samples))
	}
	sort.Ints(markers)
	var want []int
	for i := 400; i < 500; i++ { // delivered and gone; 300-399 never arrived
		want = append(want, i)
	}
	if !equalInts(markers, want) {
		t.Errorf("markers for series %v, want %v", markers, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConcurrentFailureStopsRequestsNotStarted: with two requests in
// flight, the first fails while the second is held. synctest.Wait
// lets the exporter go as far as it can: it starts none of the three
// requests left. The held request then succeeds and counts as delivered.
func TestConcurrentFailureStopsRequestsNotStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const perRequest, requests = 100, 5
		// The first request fails once the second is in flight (else
		// the second might be dropped before it starts); the second is
		// held.
		second := make(chan struct{})
		rt := &holdTransport{release: make(chan struct{}), status: func(r received) int {
			if firstValue(r) == 0 {
				<-second
				return http.StatusInternalServerError
			}
			close(second)
			return 0 // held
		}}
		exp, err := New(WithEndpoint("http://receiver.test/api/v1/write"), WithoutEnvironment(), WithLogger(discardLogger()),
			WithHTTPClient(&http.Client{Transport: rt}), WithoutScopeInfo(), WithoutTargetInfo(), WithoutMetadata(),
			WithMaxSeriesPerRequest(perRequest), WithMaxConcurrentRequests(2), WithoutStaleMarkers())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- exp.Export(context.Background(), manyGauges(perRequest*requests, time.UnixMilli(1_700_000_000_000)))
		}()
		synctest.Wait()
		if n := len(rt.all()); n != 2 {
			t.Errorf("%d requests, want 2: none started after the failure", n)
		}
		close(rt.release) // (also on failure: nothing may stay blocked in the bubble)
		err = <-done
		var we *WriteError
		if !errors.As(err, &we) {
			t.Fatalf("Export = %v, want a *WriteError", err)
		}
		if we.Delivered != perRequest || we.Series != perRequest*(requests-1) || we.StatusCode != http.StatusInternalServerError {
			t.Errorf("WriteError: %d delivered, %d dropped, status %d; want %d, %d, 500", we.Delivered, we.Series, we.StatusCode, perRequest, perRequest*(requests-1))
		}
		if n := len(rt.all()); n != 2 {
			t.Errorf("%d requests in all, want 2", n)
		}
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestConcurrencyBound: an export of more requests than the limit has
// exactly the limit in flight until they are answered, then the rest. By
// default the limit is 128.
func TestConcurrencyBound(t *testing.T) {
	cases := []struct {
		name string
		opts []Option
		want int
	}{
		{name: "default", want: 128},
		{name: "one at a time", opts: []Option{WithMaxConcurrentRequests(1)}, want: 1},
		{name: "three", opts: []Option{WithMaxConcurrentRequests(3)}, want: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const perRequest = 10
				requests := tc.want + 2
				rt := &holdTransport{release: make(chan struct{})}
				exp, err := New(append([]Option{WithEndpoint("http://receiver.test/api/v1/write"), WithoutEnvironment(), WithLogger(discardLogger()),
					WithHTTPClient(&http.Client{Transport: rt}), WithoutScopeInfo(), WithoutTargetInfo(), WithoutMetadata(),
					WithMaxSeriesPerRequest(perRequest), WithoutStaleMarkers()}, tc.opts...)...)
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() {
					done <- exp.Export(context.Background(), manyGauges(perRequest*requests, time.UnixMilli(1_700_000_000_000)))
				}()
				synctest.Wait()
				if n := len(rt.all()); n != tc.want {
					t.Errorf("%d requests in flight, want %d", n, tc.want)
				}
				close(rt.release)
				if err := <-done; err != nil {
					t.Fatalf("Export: %v", err)
				}
				seen := map[float64]bool{}
				for _, r := range rt.all() {
					seen[firstValue(r)] = true
				}
				if len(seen) != requests {
					t.Errorf("%d distinct requests arrived, want %d", len(seen), requests)
				}
				if err := exp.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// holdTransport records every request (decoded) and holds it until
// release is closed, then answers 204; status, when set, may answer a
// request at once instead (0: hold it).
type holdTransport struct {
	release chan struct{}
	status  func(received) int
	mu      sync.Mutex
	reqs    []received
}

func (h *holdTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	got := received{Header: r.Header.Clone()}
	if got.Body, got.DecodeErr = decodeBody(body); got.DecodeErr == nil {
		got.Series = fromProm(got.Body)
	}
	h.mu.Lock()
	h.reqs = append(h.reqs, got)
	h.mu.Unlock()
	if h.status != nil {
		if code := h.status(got); code != 0 {
			return &http.Response{StatusCode: code, Body: io.NopCloser(bytes.NewReader(nil)), Request: r}, nil
		}
	}
	select {
	case <-h.release:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return &http.Response{StatusCode: http.StatusNoContent, Body: io.NopCloser(bytes.NewReader(nil)), Request: r}, nil
}

func (h *holdTransport) all() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.reqs...)
}

// TestExportsNeverOvertake holds the requests of an export while another
// caller exports and Shutdown runs: neither sends anything before the
// first export has finished. synctest.Wait lets every other goroutine run
// as far as it can, so an overtaking request would be seen.
func TestExportsNeverOvertake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &holdTransport{release: make(chan struct{})}
		exp, err := New(WithEndpoint("http://receiver.test/api/v1/write"), WithoutEnvironment(), WithLogger(discardLogger()),
			WithHTTPClient(&http.Client{Transport: rt}), WithoutScopeInfo(), WithoutTargetInfo(), WithoutMetadata(),
			WithMaxSeriesPerRequest(100))
		if err != nil {
			t.Fatal(err)
		}
		at := time.UnixMilli(1_700_000_000_000)
		first, second := make(chan error, 1), make(chan error, 1)
		go func() { first <- exp.Export(context.Background(), manyGauges(500, at)) }()
		synctest.Wait()
		if n := len(rt.all()); n != 5 {
			t.Errorf("%d requests of the first export in flight, want all 5", n)
		}
		shut := make(chan error, 1)
		go func() { second <- exp.Export(context.Background(), manyGauges(500, at.Add(15*time.Second))) }()
		go func() { shut <- exp.Shutdown(context.Background()) }()
		synctest.Wait()
		if n := len(rt.all()); n != 5 {
			t.Errorf("%d requests while the first export's were held, want its 5 only: a later export or Shutdown overtook it", n)
		}
		close(rt.release)
		if err := <-first; err != nil {
			t.Fatalf("first Export: %v", err)
		}
		if err := <-shut; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		secondErr := <-second // before or after Shutdown: either is right

		// What followed the first export: the second export's requests
		// (unless Shutdown came first), then Shutdown's markers.
		const (
			data = iota
			later
			marker
		)
		kind := func(r received) int {
			s := r.Series[0].Samples[0]
			switch {
			case math.Float64bits(s.Value) == math.Float64bits(staleNaN):
				return marker
			case s.Millis == at.UnixMilli():
				return data
			}
			return later
		}
		var kinds []int
		for _, r := range rt.all() {
			if r.DecodeErr != nil {
				t.Fatal(r.DecodeErr)
			}
			kinds = append(kinds, kind(r))
		}
		want := []int{data, data, data, data, data, later, later, later, later, later, marker, marker, marker, marker, marker}
		if secondErr != nil {
			want = append(want[:5], want[10:]...) // Shutdown first: the second export was refused
		}
		if !equalInts(kinds, want) {
			t.Errorf("requests in the order %v, want %v (0 first export, 1 second, 2 markers; second export: %v)", kinds, want, secondErr)
		}
	})
}

// TestMaxConcurrentRequestsWithoutLimit: WithMaxConcurrentRequests(math.MaxInt)
// is no limit, and no overflow either (the token channel's size once made
// Export panic).
func TestMaxConcurrentRequestsWithoutLimit(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithMaxConcurrentRequests(math.MaxInt), WithMaxSeriesPerRequest(1))
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Export panicked: %v", r)
			}
		}()
		if err := exp.Export(context.Background(), manyGauges(3, time.Now())); err != nil {
			t.Errorf("Export: %v", err)
		}
	}()
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d requests received, want 3", n)
	}
}
