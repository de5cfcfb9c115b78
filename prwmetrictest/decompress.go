package prwmetrictest

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
)

// snappyStreamMagic starts a body compressed with the snappy framed
// (stream) format, which Remote-Write does not accept.
var snappyStreamMagic = []byte("\xff\x06\x00\x00sNaPpY")

// decompressedTooLargeError is a body that decompresses to more than the
// size limit: answered 413, like a body too large as sent.
type decompressedTooLargeError struct{ msg string }

func (e *decompressedTooLargeError) Error() string { return e.msg }

// decompress undoes the snappy block (or zstd) compression, refusing
// bodies that would decode to more than limit bytes with a
// *decompressedTooLargeError.
func decompress(body []byte, zstd bool, limit int64) ([]byte, error) {
	if zstd {
		return decompressZstd(body, limit)
	}
	if bytes.HasPrefix(body, snappyStreamMagic) {
		return nil, fmt.Errorf("body uses the snappy framed (stream) format; Remote-Write requires the block format (snappy.Encode)")
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, fmt.Errorf("body is not snappy block-compressed: %w", err)
	}
	if int64(n) > limit {
		return nil, &decompressedTooLargeError{fmt.Sprintf("body decompresses to %d bytes, more than the limit of %d bytes", n, limit)}
	}
	out, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("body is not snappy block-compressed: %w", err)
	}
	return out, nil
}

// decompressZstd decodes a zstd body, refusing more than limit bytes.
func decompressZstd(body []byte, limit int64) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)))
	if err != nil {
		return nil, fmt.Errorf("creating the zstd decoder: %w", err)
	}
	defer dec.Close()
	out, err := dec.DecodeAll(body, nil)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return nil, &decompressedTooLargeError{fmt.Sprintf("body decompresses to more than the limit of %d bytes", limit)}
	case err != nil:
		return nil, fmt.Errorf("body is not zstd-compressed: %w", err)
	}
	return out, nil
}
