package prwmetric

// cutSpans cuts the records of the sorted, disjoint spans todo (all of
// them, or those a receiver has not yet accepted after a refused 2.0 or
// zstd send) into requests, in order, exactly where the reference split
// cuts a prompb.WriteRequest of the same series (see cutter); no request
// crosses a gap between spans. It returns the cuts appended to cuts[:0].
func (b *batch) cutSpans(todo []span, maxSeries, maxBytes int, cuts []cut) []cut {
	c := cutter{maxSeries: maxSeries, maxBytes: maxBytes, cuts: cuts[:0]}
	for k, sp := range todo {
		c.reset(b, sp.start)
		c.advance(b, sp.end)
		if k < len(todo)-1 {
			c.flush()
		}
	}
	c.finish(b)
	return c.cuts
}

// cutter cuts records into requests of at most maxSeries series and
// maxBytes bytes (a series larger than that alone) as they come, one
// record after the other: the same cut whether it sees the records all at
// once (cutSpans) or while the conversion adds them (stream). The
// metadata go with the last request, where a request cut before the
// conversion has finished does not need to know them; in a request of
// their own when they would take the last one past maxBytes; not at all
// when there are no series to send.
type cutter struct {
	maxSeries, maxBytes int
	// The request being cut starts at start, is size bytes and counts
	// parts; next is the first record not yet looked at; exemplar is the
	// first of batch.exemplars not yet counted.
	start, next, size int
	parts             partCounts
	exemplar          int
	cuts              []cut
}

// reset starts a request at record start.
func (c *cutter) reset(b *batch, start int) {
	c.start, c.next, c.size, c.parts = start, start, 0, partCounts{}
	for c.exemplar < len(b.exemplars) && b.exemplars[c.exemplar].record < start {
		c.exemplar++
	}
}

// advance cuts the records up to end, leaving the last request open.
func (c *cutter) advance(b *batch, end int) {
	for i := c.next; i < end; i++ {
		if b.skippedByV1(i) {
			// Its exemplars go with it: past them, uncounted.
			if c.exemplar < len(b.exemplars) && b.exemplars[c.exemplar].record == i {
				c.exemplar++
			}
			continue
		}
		r := &b.records[i]
		field := fieldLen(b.seriesLen(r))
		// Series counted as sent: the custom-bucket histograms a 1.0
		// request leaves out (skippedByV1) make no request, empty or not.
		if c.parts.series > 0 && (c.parts.series >= c.maxSeries || c.size+field > c.maxBytes) {
			c.cuts = append(c.cuts, cut{start: c.start, end: i, parts: c.parts})
			c.size, c.start, c.parts = 0, i, partCounts{}
		}
		c.size += field
		c.parts.series++
		if r.isHistogram() {
			c.parts.histograms++
		} else {
			c.parts.samples++
		}
		if c.exemplar < len(b.exemplars) && b.exemplars[c.exemplar].record == i {
			c.parts.exemplars += b.exemplars[c.exemplar].n
			c.exemplar++
		}
	}
	c.next = max(c.next, end)
}

// flush closes the open request, if it has series.
func (c *cutter) flush() {
	if c.parts.series > 0 {
		c.cuts = append(c.cuts, cut{start: c.start, end: c.next, parts: c.parts})
	}
	c.start, c.size, c.parts = c.next, 0, partCounts{}
}

// finish closes the last request, with the metadata.
func (c *cutter) finish(b *batch) {
	meta := 0
	for _, m := range b.metadata {
		meta += len(m)
	}
	if meta == 0 || c.parts.series > 0 && c.size+meta <= c.maxBytes {
		if c.parts.series > 0 {
			c.cuts = append(c.cuts, cut{start: c.start, end: c.next, parts: c.parts, metadata: meta > 0})
		}
		return
	}
	c.flush()
	if len(c.cuts) > 0 { // metadata go with series, never alone
		c.cuts = append(c.cuts, cut{start: c.next, end: c.next, metadata: true})
	}
}
