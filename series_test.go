package prwmetric

import (
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
)

// TestSeriesStateSize guards the per-series memory of 1.0 exports (the
// 1 000 000-series target): a seriesState fits a 32-byte allocation, so
// what 2.0 keeps per series lives aside, in seriesCache.v2series.
func TestSeriesStateSize(t *testing.T) {
	if n := unsafe.Sizeof(seriesState{}); n > 32 {
		t.Errorf("seriesState is %d bytes, want at most 32", n)
	}
}

func testLabels(kv ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// TestLabelTable checks that a series' key gives back exactly its encoded
// labels, that keys compare like the encoded labels, which pieces the
// labels are kept in, and that the pieces leave the table with the last
// series using them.
func TestLabelTable(t *testing.T) {
	long := strings.Repeat("v", 300) // a length of two varint bytes
	sets := map[string][]prompb.Label{
		"one label":         testLabels("__name__", "up"),
		"two labels":        testLabels("__name__", "up", "job", "a"),
		"prefix of another": testLabels("__name__", "up", "job", "ab"),
		"other value":       testLabels("__name__", "up", "job", "b"),
		"long value":        testLabels("__name__", "up", "job", long),
		"64 KiB and more":   testLabels("__name__", "up", "job", strings.Repeat("v", 70_000)),
		"empty value":       testLabels("__name__", "up", "job", ""),
		"more labels":       testLabels("__name__", "up", "instance", "x:1", "job", "a", "le", "+Inf"),
		"other name":        testLabels("__name__", "upper", "job", "a"),
	}
	sc := newSeriesCache(nil, true)
	series := map[string]*seriesState{}
	for name, ls := range sets {
		s := sc.internLabels(ls)
		series[name] = s
		want := string(appendLabels(nil, ls))
		if got := string(sc.labels.appendLabels(nil, s.key)); got != want {
			t.Errorf("%s: labels %q, want %q", name, got, want)
		}
		if got := keyLabelsLen(s.key); got != len(want) {
			t.Errorf("%s: labels length %d, want %d", name, got, len(want))
		}
		if again := sc.internLabels(ls); again != s {
			t.Errorf("%s: interned twice", name)
		}
	}
	for a, sa := range series {
		for b, sb := range series {
			want := strings.Compare(string(appendLabels(nil, sets[a])), string(appendLabels(nil, sets[b])))
			if got := sc.labels.compare(sa.key, sb.key); got != want {
				t.Errorf("compare(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
	// The pieces: __name__ alone, le and quantile with the labels after
	// them, the runs of labels between them together.
	for _, c := range []struct {
		labels []prompb.Label
		pieces []string
	}{
		{testLabels("__name__", "up"), []string{"__name__"}},
		{testLabels("instance", "x:1", "job", "a"), []string{"instance job"}},
		{testLabels("A", "1", "__name__", "up", "job", "a", "le", "1", "x", "2", "zone", "z"), []string{"A", "__name__", "job", "le x zone"}},
		{testLabels("__name__", "s", "quantile", "0.5"), []string{"__name__", "quantile"}},
		{testLabels("__name__", "s", "a", "1", "quantile", "0.5", "z", "2"), []string{"__name__", "a", "quantile z"}},
		{testLabels("le", "1", "quantile", "0.5"), []string{"le", "quantile"}},
	} {
		s := sc.internLabels(c.labels)
		var got []string
		for ids := keyIDs(s.key); len(ids) > 0; {
			var id uint32
			id, ids = nextID(ids)
			var names []string
			walkLabels(sc.labels.pairs[id].field, func(name, _ string) { names = append(names, name) })
			got = append(got, strings.Join(names, " "))
		}
		if !slices.Equal(got, c.pieces) {
			t.Errorf("%v: pieces %q, want %q", c.labels, got, c.pieces)
		}
	}
	for _, s := range sc.last {
		sc.evict(s)
	}
	if n := len(sc.labels.ids); n != 0 || len(sc.byLabels) != 0 {
		t.Errorf("after every series left: %d pieces, %d series in the table, want none", n, len(sc.byLabels))
	}
}

// TestEvictedSeriesComesBack checks that a cache entry still pointing to
// an evicted series finds it again by its labels, although the numbers of
// its pieces went to other pieces in between.
func TestEvictedSeriesComesBack(t *testing.T) {
	sc := newSeriesCache(nil, true)
	a := testLabels("__name__", "a", "x", "1")
	b := testLabels("__name__", "b", "y", "2")
	sa := sc.internLabels(a)
	sc.evict(sa)
	sb := sc.internLabels(b) // takes the numbers a left
	if !sa.is(flagEvicted) {
		t.Fatal("evicted series not marked")
	}
	back := sc.revive(sa)
	if back == sb || back == sa {
		t.Fatalf("revive returned %p (evicted %p, other %p), want a new series", back, sa, sb)
	}
	for _, c := range []struct {
		s    *seriesState
		want []prompb.Label
	}{{back, a}, {sb, b}} {
		if got, want := sc.encodedLabels(c.s), string(appendLabels(nil, c.want)); got != want {
			t.Errorf("labels %q, want %q", got, want)
		}
		if sc.byLabels[c.s.key] != c.s {
			t.Errorf("series %q not in the table under its key", sc.encodedLabels(c.s))
		}
	}
	if sc.revive(back) != back {
		t.Error("revive of a series in the table returned another")
	}
}

// TestInternBaseMatchesLabels checks that a series interned from a memoised
// base (internBase) is the one its labels intern to, by every path, and
// that bases it cannot take fall back to the labels.
func TestInternBaseMatchesLabels(t *testing.T) {
	tests := []struct {
		name  string
		base  []prompb.Label
		extra []prompb.Label
		fast  bool
	}{
		{"__name__ before the base", testLabels("job", "a", "zone", "z"), testLabels("__name__", "up"), true},
		{"a name sorting before __name__", testLabels("Zone", "z", "job", "a"), testLabels("__name__", "up"), false},
		{"le in the base", testLabels("job", "a", "le", "1"), testLabels("__name__", "up"), false},
		{"two extra labels", testLabels("job", "a"), testLabels("__name__", "up_bucket", "le", "1"), false},
	}
	for _, tt := range tests {
		sc := newSeriesCache(nil, true)
		e := &baseEntry{labels: tt.base}
		sc.baseMemo.last = e
		got := sc.internWith(e.labels, tt.extra...)
		if fast := e.runKnown && !e.split; fast != tt.fast {
			t.Errorf("%s: taken from the base's piece: %v, want %v", tt.name, fast, tt.fast)
		}
		want := withLabels(tt.base, tt.extra...)
		if s := sc.internLabels(want); s != got {
			t.Errorf("%s: the labels intern to another series", tt.name)
		}
		if enc := sc.encodedLabels(got); enc != string(appendLabels(nil, want)) {
			t.Errorf("%s: labels %q, want %q", tt.name, enc, appendLabels(nil, want))
		}
		sc.evict(got)
		back := sc.revive(got)
		e = &baseEntry{labels: tt.base}
		sc.baseMemo.last = e
		if sc.internWith(e.labels, tt.extra...) != back {
			t.Errorf("%s: the revived series is not the base's", tt.name)
		}
	}
}

// TestSeriesStamp: the newest timestamp and the labels' size share one
// word; neither disturbs the other, negative times keep their sign, and a
// size past 16 bits is read from the key.
func TestSeriesStamp(t *testing.T) {
	var table labelTable
	big := string(appendLabels(nil, []prompb.Label{{Name: "__name__", Value: "x"}, {Name: "v", Value: strings.Repeat("y", 70000)}}))
	small := string(appendLabels(nil, []prompb.Label{{Name: "__name__", Value: "x"}}))
	for _, labels := range []string{small, big} {
		key, ok := table.key(nil, labels)
		if !ok {
			t.Fatal("key")
		}
		s := &seriesState{key: string(key)}
		s.setSize(keyLabelsLen(s.key))
		for _, ms := range []int64{0, 1, -1, 1_700_000_000_123, -62_135_596_800_000, 1<<47 - 1, -(1 << 47)} {
			s.setNewest(ms)
			if got := s.newest(); got != ms {
				t.Errorf("newest %d, want %d", got, ms)
			}
			if got := s.labelsSize(); got != len(labels) {
				t.Errorf("labels size %d after newest %d, want %d", got, ms, len(labels))
			}
		}
	}
}
