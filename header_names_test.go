package prwmetric

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// tenantServer answers 204 and returns the URL and a function listing the
// X-Scope-OrgID values each request carried.
func tenantServer(t *testing.T) (string, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, strings.Join(r.Header.Values("X-Scope-OrgID"), ","))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/api/v1/write", func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// TestHeaderNamesIgnoreCase: header options merge as HTTP compares names.
// Spelled differently, the environment's and the code's X-Scope-OrgID were
// two entries, both set on the request in map order, so the tenant was
// chosen at random. Twenty exporters make a random choice show.
func TestHeaderNamesIgnoreCase(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string
		opts []Option
		want string
	}{
		{name: "option over variable", env: "x-scope-orgid=env",
			opts: []Option{WithHeaders(map[string]string{"X-Scope-OrgID": "code"})}, want: "code"},
		{name: "later option", opts: []Option{WithoutEnvironment(),
			WithHeaders(map[string]string{"x-scope-orgid": "first"}),
			WithHeaders(map[string]string{"X-SCOPE-ORGID": "later"})}, want: "later"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(envHeaders, tc.env)
			}
			url, seen := tenantServer(t)
			for range 20 {
				exp, err := New(append([]Option{WithEndpoint(url), WithoutTargetInfo()}, tc.opts...)...)
				if err != nil {
					t.Fatal(err)
				}
				if err := exp.Export(context.Background(), manyGauges(1, time.Now())); err != nil {
					t.Fatal(err)
				}
				if err := exp.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			got := seen()
			if len(got) != 40 { // an export and the shutdown's markers each
				t.Fatalf("%d requests, want 40", len(got))
			}
			for i, v := range got {
				if v != tc.want {
					t.Fatalf("request %d carried X-Scope-OrgID %q, want %q (all: %v)", i, v, tc.want, got)
				}
			}
		})
	}
}

// TestHeaderNamedTwice: one map or one variable naming a header twice in
// different cases has no order to settle it, so New refuses it.
func TestHeaderNamedTwice(t *testing.T) {
	ep := WithEndpoint("http://127.0.0.1:1/api/v1/write")
	_, err := newConfig([]Option{ep, WithoutEnvironment(), WithHeaders(map[string]string{"x-scope-orgid": "a", "X-Scope-OrgID": "b"})})
	if err == nil || !strings.Contains(err.Error(), `WithHeaders: the map names header "X-Scope-Orgid" twice`) {
		t.Errorf("one map naming a header twice: err = %v", err)
	}
	t.Setenv(envHeaders, "x-scope-orgid=a,X-Scope-OrgID=b")
	_, err = newConfig([]Option{ep})
	if err == nil || !strings.Contains(err.Error(), envHeaders+`: entry 2 names header "X-Scope-Orgid" again`) {
		t.Errorf("one variable naming a header twice: err = %v", err)
	}
}
