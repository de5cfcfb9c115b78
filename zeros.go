package prwmetric

import (
	"context"
	"fmt"
	"hash/maphash"

	"github.com/prometheus/prometheus/prompb"
)

// initialZeros is the state of WithInitialZero: a counter or histogram
// series seen for the first time is preceded by a 0 at the previous
// collection time (or its start time, if later), so that increase() and
// rate() count its first increment on any receiver. The zeros go in a
// batch of their own, sent and finished before the export's batch, since
// an export's requests go out side by side and a series' two samples
// must arrive in order.
type initialZeros struct {
	batch batch
	// prevNewest is the newest sample time of the previous export: the
	// previous collection, when the new series did not exist yet;
	// lastNewest that of the last conversion, which becomes prevNewest
	// when the next export begins (not when one export is converted again).
	prevNewest, lastNewest int64
	// ended remembers (by a hash of their labels) the series that vanished
	// after delivery: back again, they continue their cumulative values and
	// must not get a zero, which would count all of it as an increase.
	ended map[uint64]struct{}
	seed  maphash.Seed
	buf   []byte
}

// maxEndedRemembered bounds initialZeros.ended (about 40 MB at most):
// past it, the oldest memory is dropped at once, and a series that comes
// back after that gets a zero.
const maxEndedRemembered = 1 << 20

func newInitialZeros() *initialZeros {
	return &initialZeros{ended: map[uint64]struct{}{}, seed: maphash.MakeSeed()}
}

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
	if len(z.ended) >= maxEndedRemembered {
		clear(z.ended)
	}
	z.ended[z.key(sc, s)] = struct{}{}
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

// nextExport makes the last conversion's collection the previous one.
func (z *initialZeros) nextExport() {
	z.prevNewest = max(z.prevNewest, z.lastNewest)
}

// begin starts a conversion's zeros.
func (z *initialZeros) begin(collectV2 bool, labels *labelTable) {
	z.batch.reset()
	z.batch.collectV2, z.batch.labels, z.batch.zeros = collectV2, labels, true
}

// end closes the zeros of a conversion whose newest sample is at newest.
func (z *initialZeros) end(newest int64, hasNewest bool) {
	if hasNewest {
		z.lastNewest = newest
	}
}

// zeroBefore adds the zero that precedes the first sample of s at ms in
// the family f (h is its native histogram, nil for a sample), and returns
// the start time the first sample then carries in 2.0 requests: the
// zero's, so that a receiver creating zeros from start times (Prometheus'
// created-timestamp-zero-ingestion) makes the same sample, not a second
// one. Without a zero it returns start unchanged.
func (cc *conversion) zeroBefore(f *family, s *seriesState, ms, start int64, h *nativeParts) int64 {
	z := cc.sc.zeros
	if z == nil || f.typ != prompb.MetricMetadata_COUNTER && f.typ != prompb.MetricMetadata_HISTOGRAM ||
		s.is(flagDelivered) || s.newest() != 0 {
		return start
	}
	at := max(z.prevNewest, start)
	if at <= 0 || at >= ms {
		return start
	}
	if _, ok := z.ended[z.key(cc.sc, s)]; ok {
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
