package prwmetric

import (
	"context"
	"fmt"
	"hash/maphash"

	"github.com/prometheus/prometheus/prompb"
)

// initialZeros is the state of WithInitialZero: a counter or histogram
// series seen for the first time is preceded by a 0 at the last collection
// the receiver holds (or its start time, if later), so that increase() and
// rate() count its first increment on any receiver; the new bucket series
// of a histogram point it holds get none (see zeroBefore). The zeros go in a
// batch of their own, sent and finished before the export's batch, since
// an export's requests go out side by side and a series' two samples
// must arrive in order.
type initialZeros struct {
	batch batch
	// heldNewest is the newest sample time of the last export that
	// arrived whole: the last collection the receiver holds, when the new
	// series did not exist yet (it would hold them). An export that failed
	// does not count: its series existed at its time. last is the last
	// conversion with samples, whose newest becomes heldNewest once its
	// export arrives.
	//
	// When the receiver answered every request of that export, taking or
	// refusing its data (processed), a series that was not in it did not
	// exist at its time either: its zero goes there. A receiver that keeps
	// refusing one request of every export (no export arrives whole) thus
	// does not get zeros older and older, until too old to accept.
	heldNewest int64
	last       lastConversion
	// before is what end replaced, for again.
	before lastConversion
	// ended remembers (by a hash of their labels) the series that vanished
	// after delivery: back again, they continue their cumulative values and
	// must not get a zero, which would count all of it as an increase.
	// Also remembered: the native histogram series the receiver held when
	// it came to refuse them, and the _count series of the classic
	// histogram points that continue them (see continueNative).
	ended endedSeries
	seed  maphash.Seed
	buf   []byte
}

// maxEndedRemembered bounds initialZeros.ended (about 40 MB at most).
const maxEndedRemembered = 1 << 20

func newInitialZeros() *initialZeros {
	return &initialZeros{ended: endedSeries{limit: maxEndedRemembered}, seed: maphash.MakeSeed()}
}

// endedSeries is a set of series hashes that forgets the oldest half when
// it is full: a series that comes back after that gets a zero, but the
// series that ended last, most likely to come back, are kept.
type endedSeries struct {
	recent, older map[uint64]struct{}
	limit         int
}

func (e *endedSeries) add(h uint64) {
	if e.recent == nil || len(e.recent) >= e.limit/2 {
		e.older, e.recent = e.recent, make(map[uint64]struct{})
	}
	e.recent[h] = struct{}{}
}

func (e *endedSeries) has(h uint64) bool {
	_, ok := e.recent[h]
	if !ok {
		_, ok = e.older[h]
	}
	return ok
}

func (e *endedSeries) empty() bool { return len(e.recent) == 0 && len(e.older) == 0 }

// key hashes the encoded labels of s: its key in the label table names
// pieces whose numbers are reused once the series is gone.
func (z *initialZeros) key(sc *seriesCache, s *seriesState) uint64 {
	if s.is(flagEvicted) {
		return maphash.String(z.seed, s.key) // the encoded labels
	}
	z.buf = sc.labels.appendLabels(z.buf[:0], s.key)
	return maphash.Bytes(z.seed, z.buf)
}

// rememberEnded records that s vanished after delivery.
func (z *initialZeros) rememberEnded(sc *seriesCache, s *seriesState) {
	z.ended.add(z.key(sc, s))
}

// wasEnded reports whether s vanished after delivery.
func (z *initialZeros) wasEnded(sc *seriesCache, s *seriesState) bool {
	if z.ended.empty() {
		return false // spares the hash
	}
	return z.ended.has(z.key(sc, s))
}

// held reports whether the receiver holds s, or held it before it
// vanished.
func (z *initialZeros) held(sc *seriesCache, s *seriesState) bool {
	return s.is(flagDelivered) || s.newest() != 0 || z.wasEnded(sc, s)
}

// rememberNativeHistograms remembers the native histogram series the
// receiver holds as ended, before dropNativeHistograms forgets which they
// are: their points, sent as classic histograms from then on, continue
// their counts (see continueNative). The export is converted again: its
// conversion is not the one before (again).
func (sc *seriesCache) rememberNativeHistograms() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	z := sc.zeros
	if z == nil {
		return
	}
	z.again()
	for _, s := range sc.last {
		if s.is(flagHistogram) && s.is(flagDelivered) {
			z.rememberEnded(sc, s)
		}
	}
}

// continueNative remembers count, the _count series of a classic
// histogram point, as ended when the receiver held the point's native
// histogram series (labels base and __name__ name): the point continues
// that series' counts, and its classic series, all new, must get no zero
// (see zeroBefore).
func (z *initialZeros) continueNative(sc *seriesCache, base []prompb.Label, name string, count *seriesState) {
	if z.ended.empty() || z.held(sc, count) {
		return
	}
	sc.labelList = appendWithLabels(sc.labelList[:0], base, nameLabel(name))
	z.buf = appendLabels(z.buf[:0], sc.labelList)
	clear(sc.labelList) // keep no label strings alive
	if z.ended.has(maphash.Bytes(z.seed, z.buf)) {
		z.rememberEnded(sc, count)
	}
}

// maxKeptZeros bounds the zeros batch whose buffers are kept for the next
// export: past it (a first export of many series), they are let go, as
// later exports have few new series.
const maxKeptZeros = 1 << 14

// release ends an export's use of the zeros batch.
func (z *initialZeros) release() {
	if cap(z.batch.records) > maxKeptZeros {
		z.batch = batch{}
		return
	}
	z.batch.reset()
}

// lastConversion is initialZeros' memory of the last conversion with
// samples.
type lastConversion struct {
	newest    int64
	gen       generation
	hasNewest bool
	processed bool
}

// sent records what came of the export of the last conversion: every
// sample arrived, or the receiver took or refused the data of each
// request (processed).
func (z *initialZeros) sent(arrived, processed bool) {
	if !z.last.hasNewest {
		return // markers only: no collection of its own
	}
	if arrived {
		z.heldNewest = max(z.heldNewest, z.last.newest)
	}
	z.last.processed = arrived || processed
}

// begin starts a conversion's zeros.
func (z *initialZeros) begin(collectV2 bool, labels *labelTable) {
	z.batch.reset()
	z.batch.collectV2, z.batch.labels, z.batch.zeros = collectV2, labels, true
}

// end closes the zeros of conversion gen, whose newest sample is at
// newest.
func (z *initialZeros) end(gen generation, newest int64, hasNewest bool) {
	z.before = z.last
	if hasNewest {
		z.last = lastConversion{newest: newest, gen: gen, hasNewest: true}
	} else {
		z.last.hasNewest = false // until the next with samples
	}
}

// zeroMark is how far the zeros batch is filled, for undo.
type zeroMark struct {
	records, extra, v2 int
	native             bool
}

func (z *initialZeros) mark() zeroMark {
	b := &z.batch
	return zeroMark{records: len(b.records), extra: len(b.extra), v2: len(b.v2), native: b.native}
}

// undo drops the zeros added since m.
func (z *initialZeros) undo(m zeroMark) {
	b := &z.batch
	clear(b.records[m.records:])
	clear(b.v2[m.v2:])
	b.records, b.extra, b.v2, b.native = b.records[:m.records], b.extra[:m.extra], b.v2[:m.v2], m.native
}

// again undoes end: the last conversion's collection is converted again,
// and the conversion before it stays the last. Which series were in that
// one, the conversion that is undone has overwritten (seriesState.seen):
// the export converted again falls back to heldNewest.
func (z *initialZeros) again() {
	z.last = z.before
	z.last.processed = false
}

// zeroBefore adds the zero that precedes the first sample of s at ms in
// the family f (h is its native histogram, nil for a sample; seen is the
// conversion s was last in before this one), and returns
// the start time the first sample then carries in 2.0 requests: the
// zero's, so that a receiver creating zeros from start times (Prometheus'
// created-timestamp-zero-ingestion) makes the same sample, not a second
// one. Without a zero it returns start unchanged.
//
// A new series of a histogram point the receiver held (cc.histogramCount,
// its _count series, held) gets no zero: it is a new bucket (exponential
// histograms sent as classic ones grow them), whose first value counts
// every observation up to its bound since the start, not since the last
// collection.
func (cc *conversion) zeroBefore(f *family, s *seriesState, seen generation, ms, start int64, h *nativeParts) int64 {
	z := cc.sc.zeros
	if z == nil || f.typ != prompb.MetricMetadata_COUNTER && f.typ != prompb.MetricMetadata_HISTOGRAM ||
		s.is(flagDelivered) || s.newest() != 0 {
		return start
	}
	at := max(z.heldNewest, start)
	if z.last.processed && seen != z.last.gen {
		at = max(at, z.last.newest)
	}
	if at <= 0 || at >= ms {
		return start
	}
	if count := cc.histogramCount; count != nil && count != s && z.held(cc.sc, count) || z.wasEnded(cc.sc, s) {
		return start
	}
	zb := &z.batch
	r := record{s: s, key: s.key, ts: at}
	if h != nil {
		begin := len(zb.extra)
		zero := nativeParts{schema: h.schema, zeroThreshold: h.zeroThreshold, customValues: h.customValues, timestamp: at}
		zb.extra = appendHistogram(zb.extra, &zero, true)
		r.extra, r.extraLen = uint32(begin), uint32(len(zb.extra)-begin)|recordHistogram
		zb.native = true
	}
	zb.records = append(zb.records, r)
	if zb.collectV2 {
		info := recordV2{fam: f, customBuckets: cc.customBuckets, v2: s.v2}
		if cc.sc.rules.withoutMetadata {
			info.fam = nil
		}
		zb.v2 = append(zb.v2, info)
	}
	return 0
}

// sendZeros sends the zeros of this export, when there are any, before its
// samples: the receiver must hold a zero before the first sample of its
// series. What it accepts is marked delivered; a failure is reported but
// does not stop the samples, which matter more.
func (e *Exporter) sendZeros(ctx context.Context) (refused, err error) {
	z := e.series.zeros
	if z == nil || len(z.batch.records) == 0 {
		return nil, nil
	}
	delivered, err := e.send(ctx, &z.batch, &e.buffers)
	if refusesNativeHistograms(err) && e.series.sendsNativeHistograms() {
		return err, nil
	}
	e.series.markDelivered(&z.batch, delivered)
	if err != nil {
		return nil, fmt.Errorf("prwmetric: WithInitialZero: the zeros before %d new series' first samples: %w", len(z.batch.records), err)
	}
	return nil, nil
}
