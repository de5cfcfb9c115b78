package prwmetric

import (
	"math"
)

// staleNaN is Prometheus' staleness marker: the series ended. It is reserved
// for that and never sent for an ordinary NaN.
var staleNaN = math.Float64frombits(0x7ff0000000000002)

// The series table of the cache (series.go) remembers, for each series, what
// the receiver holds of it: whether the series arrived (in a request the
// receiver accepted) and has not been ended since, and its newest timestamp
// then. That serves two rules. A series the receiver holds that is missing
// from an export is ended with a staleness marker. And a series' samples
// must have strictly increasing timestamps, so a sample stamped at or before
// the newest one delivered moves to 1 ms after it (see
// conversion.emit). Only accepted requests count: after a failed
// request, the next export is still measured against the samples that
// arrived.

// sweep ends a conversion: it appends to b a staleness marker at now (ms),
// or 1 ms after the series' newest sample if that is later, for every
// series delivered before and not sent in this export, and forgets the
// series and cache entries this export did not use and the receiver does
// not hold. When the export used every series and every entry, which is the
// steady state, it costs nothing.
func (sc *seriesCache) sweep(b *batch, now int64) {
	sc.baseMemo = baseMemo{} // the conversion's, no longer needed
	if sc.seenCount < len(sc.last) {
		kept := sc.last[:0]
		for _, s := range sc.last {
			switch {
			case s.seen() == sc.gen:
			case s.is(flagDelivered):
				if sc.zeros != nil {
					sc.zeros.rememberEnded(sc, s)
				}
				// It stays until its end is delivered.
				if sc.markStale {
					b.addMarker(s, now)
				} else {
					b.ended = append(b.ended, s)
				}
			default:
				sc.dropV2(s)
				sc.evict(s)
				continue
			}
			kept = append(kept, s)
		}
		clear(sc.last[len(kept):]) // let the forgotten series be collected
		sc.last = kept
	}
	if sc.entriesSeen < sc.entries {
		sc.sweepEntries()
	}
}

// markDelivered records that the receiver accepted the records of b in
// delivered (sorted, disjoint spans: requests of one export go out side by
// side, so those that succeeded need not be the first): the series among
// them are what it holds now, with their newest sample, and those ended by
// a marker are gone. The rest of b changes nothing: after a failure, the
// next export is measured against what the receiver holds. Records that
// markSent marked already are not marked again.
func (sc *seriesCache) markDelivered(b *batch, delivered []span) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	todo := delivered
	if len(b.marked) > 0 {
		b.unmarked = subtractSpans(b.unmarked[:0], delivered, b.marked)
		todo = b.unmarked
	}
	for _, sp := range todo {
		for i := sp.start; i < sp.end; i++ {
			sc.markRecord(b, i)
		}
	}
	// All that was delivered, marked early or not.
	if len(b.ended) > 0 && b.arrived(delivered) {
		// Without markers, a series ends with the first export that
		// arrives without it.
		for _, s := range b.ended {
			s.set(flagDelivered, false)
		}
	}
}

// markSent marks the records of request c delivered as soon as the
// receiver accepted it, while the export's other requests are still under
// way: on two cores that overlaps marking them with encoding and sending
// the rest, instead of adding it to the export's end. markDelivered then
// leaves them out. Records a 1.0 request left out are not marked.
func (sc *seriesCache) markSent(b *batch, c cut, proto Protocol) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for i := c.start; i < c.end; i++ {
		if proto == ProtocolV1 && b.skippedByV1(i) {
			continue
		}
		sc.markRecord(b, i)
	}
	s := span{c.start, c.end}
	if n := len(b.marked); n == 0 || b.marked[n-1].end <= s.start {
		b.marked = addSpan(b.marked, s)
	} else {
		b.marked = mergeSpans(nil, b.marked, []span{s}) // a resend's request, rare
	}
}

// marksEarly reports whether b's records may be marked delivered request
// by request (markSent): not while the receiver may yet refuse its native
// histograms, whose refusal converts and sends the export again as if
// nothing had arrived (see Exporter.Export). Once it has accepted one, a
// later refusal (the receiver reconfigured) only moves the samples sent
// again 1 ms later.
func (sc *seriesCache) marksEarly(b *batch) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return !b.native || sc.nativeAccepted
}

// setNewest records r's sample as the newest its series has delivered, and
// where restamp moved it from (sc.mu held).
func (sc *seriesCache) setNewest(r *record) {
	r.s.setNewest(r.ts)
	switch by := r.moved(); {
	case by > 0:
		if sc.moved == nil {
			sc.moved = map[*seriesState]movedSample{}
		}
		sc.moved[r.s] = movedSample{own: r.ts - by, value: math.Float64bits(r.value)}
		r.s.set(flagMoved, true)
	case r.s.is(flagMoved):
		delete(sc.moved, r.s)
		r.s.set(flagMoved, false)
	}
}

// markRecord records that the receiver holds record i of b (sc.mu held).
func (sc *seriesCache) markRecord(b *batch, i int) {
	r := &b.records[i]
	if b.isMarker(i) {
		r.s.set(flagDelivered, false)
		return
	}
	sc.setNewest(r)
	r.s.set(flagDelivered, true)
	if r.isHistogram() {
		r.s.set(flagHistogram, true)
		sc.nativeAccepted = true
	} else {
		r.s.set(flagHistogram, false)
	}
	sc.markExemplars(b, i)
}

// markExemplars records that the receiver may hold the exemplars of record
// i of b (sc.mu held), sent as 1.0 (all of them) or 2.0 (those newer than
// the last): 2.0 sends none that is not newer than the newest
// (seriesV2.newestExemplar), which receivers refuse as out of order, the
// whole request with it. Only records with exemplars or a histogram touch
// what 2.0 keeps of their series (a cache miss per record otherwise); a
// series never sent as 2.0 has nothing kept, and its first 2.0 cut starts
// from its newest sample delivered (v2Cutter.record).
func (sc *seriesCache) markExemplars(b *batch, i int) {
	r := &b.records[i]
	if !b.collectV2 || r.extraSize() == 0 || r.s.v2 == 0 {
		return
	}
	var newest int64
	walkExtra(b.extraOf(r), func(tag byte, body string) {
		if tag == tagSeriesExemplar {
			_, rest := splitExemplar(body)
			newest = max(newest, exemplarTime(rest))
		}
	})
	if newest != 0 {
		sv := &sc.v2series[r.s.v2]
		sv.newestExemplar = max(sv.newestExemplar, newest)
	}
}

// markExemplarsAnswered records that the receiver may hold the exemplars
// of records[from:to] of b, a 2.0 request it answered with a failure:
// Prometheus commits what it can of a request before it answers 400, and
// the same old exemplars sent again would be refused again, export after
// export.
func (sc *seriesCache) markExemplarsAnswered(b *batch, from, to int) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for i := from; i < to; i++ {
		if !b.isMarker(i) {
			sc.markExemplars(b, i)
		}
	}
}

// markMaybeStored records that the receiver may hold records[from:to] of
// b, sent as proto by a request whose outcome is unknown (see
// mayHaveArrived): the next sample of each of their series must come
// after this one, and a series may now need its end marked. A marker among
// them may have ended its series; one more marker later is harmless.
func (sc *seriesCache) markMaybeStored(b *batch, from, to int, proto Protocol) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for i := from; i < to; i++ {
		if proto == ProtocolV1 && b.skippedByV1(i) {
			continue
		}
		r := &b.records[i]
		if r.ts >= r.s.newest() {
			sc.setNewest(r)
		}
		if !b.isMarker(i) {
			r.s.set(flagDelivered, true)
			r.s.set(flagHistogram, r.isHistogram())
			sc.markExemplars(b, i)
		}
	}
}

// arrived reports whether the receiver accepted every record of b that it
// could take: all of them, but for the custom-bucket histograms a 1.0
// receiver is never sent.
func (b *batch) arrived(delivered []span) bool {
	if covered(delivered) == len(b.records) {
		return true
	}
	if !b.collectV2 {
		return false
	}
	for _, g := range gaps(nil, delivered, len(b.records)) {
		for i := g.start; i < g.end; i++ {
			if !b.skippedByV1(i) {
				return false
			}
		}
	}
	return true
}

// endAll appends to b a staleness marker at now (ms) for every delivered
// series (none when markers are off) and forgets that the receiver holds
// them, for Shutdown: each is ended once, whether or not the request
// succeeds.
func (sc *seriesCache) endAll(b *batch, now int64) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	b.collectV2, b.labels = sc.collectV2, &sc.labels
	for _, s := range sc.last {
		if s.is(flagDelivered) && sc.markStale {
			b.addMarker(s, now)
		}
		s.set(flagDelivered, false)
	}
}

// addMarker appends the staleness marker of s at now, or 1 ms after its
// newest sample if that is later: a marker at the time of that sample
// would be a second sample at one timestamp, which the receiver rejects.
func (b *batch) addMarker(s *seriesState, now int64) {
	at := max(now, s.newest()+1)
	r := record{s: s, key: s.key, value: staleNaN, ts: at}
	if s.is(flagHistogram) {
		// A native histogram series ends with a histogram whose sum is
		// the stale NaN, as Prometheus itself writes it.
		start := len(b.extra)
		b.extra = appendHistogram(b.extra, &nativeParts{sum: staleNaN, timestamp: at}, false)
		r.extra, r.extraLen = uint32(start), uint32(len(b.extra)-start)|recordHistogram
		b.native = true
	}
	r.extraLen |= recordMarker
	b.records = append(b.records, r)
	if b.collectV2 {
		// A marker carries no start time and no metadata: the series
		// may be gone from the cache, and receivers need neither.
		b.v2 = append(b.v2, recordV2{})
	}
}
