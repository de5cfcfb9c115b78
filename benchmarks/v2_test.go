package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// recordingHandler is a slog.Handler that keeps every record, so that a
// test or benchmark can tell whether the exporter warned.
type recordingHandler struct {
	mu      sync.Mutex
	records []string // level and message
	warns   int
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, b.String())
	if r.Level >= slog.LevelWarn {
		h.warns++
	}
	return nil
}

func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// warnings returns the number of records at level WARN or above, and all
// records.
func (h *recordingHandler) warnings() (int, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.warns, append([]string(nil), h.records...)
}

// checkV2 says what is wrong, if anything, with exports of w in Remote
// Write 2.0, from the receiver's counts d: a request that was not 2.0, or
// counts that are not the workload's (with nhcb, explicit-bucket histograms
// count as native histograms).
func checkV2(d Stats, w *Workload, exports int, nhcb bool) error {
	if d.Requests == 0 || d.V2Requests != d.Requests {
		return fmt.Errorf("the receiver saw %d requests, %d of them Remote Write 2.0; want all", d.Requests, d.V2Requests)
	}
	samples, histograms := w.Expect(nhcb)
	if d.Samples != int64(exports*samples) || d.Histograms != int64(exports*histograms) || d.Exemplars != 0 {
		return fmt.Errorf("%d exports carried %d samples, %d histograms, %d exemplars; want %d samples, %d histograms, no exemplar",
			exports, d.Samples, d.Histograms, d.Exemplars, exports*samples, exports*histograms)
	}
	return nil
}

// TestPrwmetricV2ThroughReceiverProcess checks what the 2.0 benchmarks
// measure: exports reach the receiver process as Remote Write 2.0 requests,
// which it answers with written counts that satisfy the exporter, so that
// it neither warns nor falls back to 1.0, and the counts are the
// workload's.
func TestPrwmetricV2ThroughReceiverProcess(t *testing.T) {
	for _, tc := range []struct {
		name string
		give *fixture
		peer string
	}{
		{name: "W", give: newFixture(NewWorkloadW(), 0), peer: "prwmetric_v2"},
		{name: "histograms, classic", give: newFixture(NewHistogramsWorkload(10), 0), peer: "prwmetric_v2"},
		{name: "histograms, NHCB", give: newFixture(NewHistogramsWorkload(10), 0), peer: "prwmetric_v2_nhcb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := peerNamed(t, tc.peer)
			rcv := receiver(t)
			export := p.push(t, tc.give, rcv.URL+p.path())
			before, err := rcv.Stats()
			if err != nil {
				t.Fatal(err)
			}
			const exports = 3 // the first, and steady ones
			for range exports {
				if err := export(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			after, err := rcv.Stats()
			if err != nil {
				t.Fatal(err)
			}
			d := after.Sub(before)
			if err := checkV2(d, tc.give.w, exports, p.nhcb); err != nil {
				t.Fatal(err)
			}
			if d.RawBytes <= 0 || d.WireBytes <= 0 || d.DecodeNanos <= 0 {
				t.Errorf("receiver counts %+v: want raw and wire bytes and decode time", d)
			}
		})
	}
}

// TestCheckV2 checks that checkV2 fails on what it is meant to catch.
func TestCheckV2(t *testing.T) {
	w := NewHistogramsWorkload(2)
	samples, histograms := w.Expect(false)
	ok := Stats{Requests: 2, V2Requests: 2, Samples: int64(2 * samples), Histograms: int64(2 * histograms)}
	for _, tc := range []struct {
		name    string
		give    Stats
		nhcb    bool
		wantErr bool
	}{
		{name: "the workload, twice", give: ok},
		{name: "classic counts taken for NHCB", give: ok, nhcb: true, wantErr: true},
		{name: "a 1.0 request", give: Stats{Requests: 3, V2Requests: 2, Samples: ok.Samples, Histograms: ok.Histograms}, wantErr: true},
		{name: "no request", give: Stats{}, wantErr: true},
		{name: "a sample short", give: Stats{Requests: 2, V2Requests: 2, Samples: ok.Samples - 1, Histograms: ok.Histograms}, wantErr: true},
		{name: "an exemplar", give: Stats{Requests: 2, V2Requests: 2, Samples: ok.Samples, Histograms: ok.Histograms, Exemplars: 1}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkV2(tc.give, w, 2, tc.nhcb); (err != nil) != tc.wantErr {
				t.Errorf("checkV2 = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

// decodeV2 decodes Remote Write 2.0 bodies with the reference decoder and
// resolves their symbols, into 1.0 series (labels, samples, histograms).
func decodeV2(t *testing.T, bodies [][]byte) []prompb.TimeSeries {
	t.Helper()
	var out []prompb.TimeSeries
	for i, body := range bodies {
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			t.Fatalf("request %d: snappy: %v", i, err)
		}
		var req writev2.Request
		if err := req.Unmarshal(raw); err != nil {
			t.Fatalf("request %d: protobuf: %v", i, err)
		}
		for _, ts := range req.Timeseries {
			var s prompb.TimeSeries
			for j := 0; j+1 < len(ts.LabelsRefs); j += 2 {
				s.Labels = append(s.Labels, prompb.Label{Name: req.Symbols[ts.LabelsRefs[j]], Value: req.Symbols[ts.LabelsRefs[j+1]]})
			}
			for _, sm := range ts.Samples {
				s.Samples = append(s.Samples, prompb.Sample{Value: sm.Value, Timestamp: sm.Timestamp})
			}
			for _, h := range ts.Histograms {
				s.Histograms = append(s.Histograms, prompb.Histogram{
					Count: &prompb.Histogram_CountInt{CountInt: h.GetCountInt()}, Sum: h.Sum, Schema: h.Schema, Timestamp: h.Timestamp,
				})
			}
			out = append(out, s)
		}
	}
	return out
}

// v2Body is a snappy-compressed 2.0 request.
func v2Body(t testing.TB, req *writev2.Request) []byte {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// TestReceiverV2 checks the receiver's answers to 2.0 requests, and that
// it answers 1.0 requests as before, without counts.
func TestReceiverV2(t *testing.T) {
	symbols := []string{"", "__name__", "up", "job", "api", "trace_id", "abc", "requests"}
	series := func(refs ...uint32) writev2.TimeSeries { return writev2.TimeSeries{LabelsRefs: refs} }
	samples := series(1, 2, 3, 4)
	samples.Samples = []writev2.Sample{{Value: 1, Timestamp: 1000}, {Value: 2, Timestamp: 2000}}
	samples.Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: 7, UnitRef: 0}
	histograms := series(1, 7, 3, 4)
	histograms.Histograms = []writev2.Histogram{{Count: &writev2.Histogram_CountInt{CountInt: 3}, Sum: 1.5, Schema: 0, Timestamp: 1000}}
	histograms.Exemplars = []writev2.Exemplar{{LabelsRefs: []uint32{5, 6}, Value: 0.5, Timestamp: 900}, {Value: 1, Timestamp: 950}}
	valid := v2Body(t, &writev2.Request{Symbols: symbols, Timeseries: []writev2.TimeSeries{samples, histograms}})
	badRef := v2Body(t, &writev2.Request{Symbols: symbols, Timeseries: []writev2.TimeSeries{series(1, 8)}})
	badRef2 := writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Samples: samples.Samples, Metadata: writev2.Metadata{HelpRef: 99}}
	noEmpty := v2Body(t, &writev2.Request{Symbols: symbols[1:], Timeseries: []writev2.TimeSeries{samples}})
	odd := series(1, 2, 3)
	odd.Samples = samples.Samples
	both := samples
	both.Histograms = histograms.Histograms
	empty := series(1, 2)

	for _, tc := range []struct {
		name        string
		contentType string
		encoding    string
		body        []byte
		wantStatus  int
		wantWritten string // samples/histograms/exemplars headers, "" for none
		wantV2      int64
	}{
		{name: "samples, histograms and exemplars", contentType: contentTypeV2, encoding: "snappy", body: valid,
			wantStatus: http.StatusNoContent, wantWritten: "2/1/2", wantV2: 1},
		{name: "content type with a space", contentType: "application/x-protobuf; proto=io.prometheus.write.v2.Request", encoding: "snappy", body: valid,
			wantStatus: http.StatusNoContent, wantWritten: "2/1/2", wantV2: 1},
		{name: "1.0 request, not decoded", contentType: "application/x-protobuf", encoding: "snappy", body: valid,
			wantStatus: http.StatusNoContent},
		{name: "1.0 content type with proto parameter", contentType: "application/x-protobuf;proto=prometheus.WriteRequest", encoding: "snappy", body: valid,
			wantStatus: http.StatusNoContent},
		{name: "not snappy", contentType: contentTypeV2, body: valid, wantStatus: http.StatusUnsupportedMediaType},
		{name: "corrupt snappy", contentType: contentTypeV2, encoding: "snappy", body: valid[:len(valid)/2], wantStatus: http.StatusBadRequest},
		{name: "not protobuf", contentType: contentTypeV2, encoding: "snappy", body: snappy.Encode(nil, []byte{0xff, 0xff, 0xff}), wantStatus: http.StatusBadRequest},
		{name: "label reference beyond the symbols", contentType: contentTypeV2, encoding: "snappy", body: badRef, wantStatus: http.StatusBadRequest},
		{name: "help reference beyond the symbols", contentType: contentTypeV2, encoding: "snappy",
			body: v2Body(t, &writev2.Request{Symbols: symbols, Timeseries: []writev2.TimeSeries{badRef2}}), wantStatus: http.StatusBadRequest},
		{name: "symbols without the empty string first", contentType: contentTypeV2, encoding: "snappy", body: noEmpty, wantStatus: http.StatusBadRequest},
		{name: "odd label references", contentType: contentTypeV2, encoding: "snappy",
			body: v2Body(t, &writev2.Request{Symbols: symbols, Timeseries: []writev2.TimeSeries{odd}}), wantStatus: http.StatusBadRequest},
		{name: "samples and histograms", contentType: contentTypeV2, encoding: "snappy",
			body: v2Body(t, &writev2.Request{Symbols: symbols, Timeseries: []writev2.TimeSeries{both}}), wantStatus: http.StatusBadRequest},
		{name: "series without data", contentType: contentTypeV2, encoding: "snappy",
			body: v2Body(t, &writev2.Request{Symbols: symbols, Timeseries: []writev2.TimeSeries{empty}}), wantStatus: http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &counter{}
			srv := httptest.NewServer(c)
			t.Cleanup(srv.Close)
			// Twice, so that the second request decodes into used buffers.
			for i := range 2 {
				req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/write", bytes.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", tc.contentType)
				if tc.encoding != "" {
					req.Header.Set("Content-Encoding", tc.encoding)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.wantStatus {
					t.Fatalf("request %d: status %d (%s), want %d", i, resp.StatusCode, msg, tc.wantStatus)
				}
				var written string
				if h := resp.Header; h.Get(headerSamplesWritten) != "" || h.Get(headerHistogramsWritten) != "" || h.Get(headerExemplarsWritten) != "" {
					written = h.Get(headerSamplesWritten) + "/" + h.Get(headerHistogramsWritten) + "/" + h.Get(headerExemplarsWritten)
				}
				if written != tc.wantWritten {
					t.Errorf("request %d: written %q, want %q", i, written, tc.wantWritten)
				}
			}
			s := c.stats()
			wantRequests := int64(0)
			if tc.wantStatus == http.StatusNoContent {
				wantRequests = 2
			}
			if s.Requests != wantRequests || s.V2Requests != 2*tc.wantV2 {
				t.Errorf("stats %+v: want %d requests, %d of them 2.0", s, wantRequests, 2*tc.wantV2)
			}
			if tc.wantStatus == http.StatusNoContent {
				raw, err := snappy.DecodedLen(tc.body)
				if err != nil {
					t.Fatal(err)
				}
				if s.WireBytes != int64(2*len(tc.body)) || s.RawBytes != int64(2*raw) {
					t.Errorf("stats %+v: want %d wire bytes, %d raw", s, 2*len(tc.body), 2*raw)
				}
			}
		})
	}
}

// FuzzReceiverV2 checks that the receiver never panics on a 2.0 body, and
// that whatever it accepts the reference decoder accepts too, with the same
// counts.
func FuzzReceiverV2(f *testing.F) {
	ts := writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1}}}
	seed, err := (&writev2.Request{Symbols: []string{"", "a", "b"}, Timeseries: []writev2.TimeSeries{ts, ts}}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0x22, 0x00, 0x2a, 0x02, 0x08, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var s v2Scratch
		got, err := s.count(raw)
		if err != nil {
			return
		}
		var req writev2.Request
		if err := req.Unmarshal(raw); err != nil {
			t.Fatalf("the receiver accepted a body the reference decoder rejects: %v", err)
		}
		var want v2Counts
		for _, ts := range req.Timeseries {
			want.samples += len(ts.Samples)
			want.histograms += len(ts.Histograms)
			want.exemplars += len(ts.Exemplars)
		}
		if got != want {
			t.Fatalf("receiver counts %+v, reference decoder %+v", got, want)
		}
	})
}
