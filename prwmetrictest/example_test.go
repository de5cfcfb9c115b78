package prwmetrictest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// send posts wr to url the way a Remote-Write 1.0 sender must, and returns
// the HTTP status, or -1 if no answer arrived. In real tests the sender is the code under test, for
// example a prwmetric exporter pointed at srv.URL().
func send(url string, wr *prompb.WriteRequest) int {
	raw, err := wr.Marshal()
	if err != nil {
		panic(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "example/1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

func counter(value float64, ts int64, kv ...string) *prompb.WriteRequest {
	var labels []prompb.Label
	for i := 0; i < len(kv); i += 2 {
		labels = append(labels, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  labels,
		Samples: []prompb.Sample{{Timestamp: ts, Value: value}},
	}}}
}

func Example() {
	srv := prwmetrictest.NewServer()
	defer srv.Close()

	status := send(srv.URL(), counter(42, 1700000000000, "__name__", "requests_total", "job", "shop", "path", "/cart"))
	fmt.Println("status:", status)

	// Select a series by name and some of its labels.
	s, err := srv.Latest("requests_total", map[string]string{"path": "/cart"})
	if err != nil {
		panic(err)
	}
	fmt.Println("value:", s.Value, "at", s.Time().UTC().Format(time.RFC3339))
	for _, series := range srv.Series() {
		fmt.Println(series.Labels)
	}
	fmt.Println("violations:", len(srv.Violations()))
	// Output:
	// status: 204
	// value: 42 at 2023-11-14T22:13:20Z
	// requests_total{job="shop", path="/cart"}
	// violations: 0
}

// A request that breaks a rule is answered 400 and the violation recorded.
func ExampleServer_Violations() {
	srv := prwmetrictest.NewServer()
	defer srv.Close()

	// Labels must be sorted by name: "job" may not follow "zone".
	status := send(srv.URL(), counter(1, 1700000000000, "__name__", "up", "zone", "eu", "job", "shop"))
	fmt.Println("status:", status)
	for _, v := range srv.Violations() {
		fmt.Println(v)
	}
	// Output:
	// status: 400
	// request 1: series {__name__="up", zone="eu", job="shop"}: labels not sorted by name: "job" comes after "zone"
}

// Simulate a backend that is down for two requests, then recovers.
func ExampleServer_RespondWith() {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	srv.RespondWith(2, prwmetrictest.Response{Status: http.StatusServiceUnavailable, RetryAfter: "1"})

	for i := range 3 {
		fmt.Println(send(srv.URL(), counter(float64(i), 1700000000000+int64(i), "__name__", "up")))
	}
	samples, _ := srv.Samples("up", nil)
	fmt.Println("stored samples:", len(samples))
	// Output:
	// 503
	// 503
	// 204
	// stored samples: 1
}

func ExampleServer_ClassicHistogram() {
	srv := prwmetrictest.NewServer()
	defer srv.Close()

	const ts = 1700000000000
	wr := &prompb.WriteRequest{}
	add := func(name string, v float64, kv ...string) {
		labels := []prompb.Label{{Name: "__name__", Value: name}}
		for i := 0; i < len(kv); i += 2 {
			labels = append(labels, prompb.Label{Name: kv[i], Value: kv[i+1]})
		}
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: labels, Samples: []prompb.Sample{{Timestamp: ts, Value: v}}})
	}
	add("latency_seconds_bucket", 2, "le", "0.5")
	add("latency_seconds_bucket", 5, "le", "1")
	add("latency_seconds_bucket", 6, "le", "+Inf")
	add("latency_seconds_count", 6)
	add("latency_seconds_sum", 4.2)
	send(srv.URL(), wr)

	h, err := srv.ClassicHistogram("latency_seconds", nil)
	if err != nil {
		panic(err)
	}
	for _, b := range h.Buckets {
		fmt.Printf("le=%v: %v\n", b.UpperBound, b.CumulativeCount)
	}
	fmt.Println("count:", h.Count, "sum:", h.Sum)
	// Output:
	// le=0.5: 2
	// le=1: 5
	// le=+Inf: 6
	// count: 6 sum: 4.2
}

// Wait for a request sent in the background instead of sleeping.
func ExampleServer_WaitForRequests() {
	srv := prwmetrictest.NewServer()
	defer srv.Close()

	n := srv.RequestCount()
	go send(srv.URL(), counter(1, 1700000000000, "__name__", "up"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.WaitForRequests(ctx, n+1); err != nil {
		panic(err)
	}
	fmt.Println("requests:", srv.RequestCount())
	// Output:
	// requests: 1
}
