package prwmetric

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// maxSecretFileBytes bounds every secret file read at run time: a secret is
// small, and a wrong path (a log file, a device) must not be read whole.
const maxSecretFileBytes = 64 << 10

// readSecretFile reads the secret file at path, bounded in size
// (maxSecretFileBytes) and in time by ctx. Only regular files are read: a
// FIFO or device could block forever. Errors name option and path, never
// the contents.
func readSecretFile(ctx context.Context, option, path string) (string, error) {
	fail := func(err error) error { return fmt.Errorf("prwmetric: %s %q: %w", option, path, err) }
	if err := ctx.Err(); err != nil {
		return "", fail(err)
	}
	type result struct {
		content string
		err     error
	}
	// Buffered: a read that outlives ctx (a hung network file system)
	// finishes into the buffer and its goroutine ends.
	done := make(chan result, 1)
	go func() {
		s, err := readRegularFile(path)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return "", fail(r.err)
		}
		return r.content, nil
	case <-ctx.Done():
		return "", fail(ctx.Err())
	}
}

func readRegularFile(path string) (string, error) {
	return readRegularFileMax(path, maxSecretFileBytes)
}

// maxTLSFileBytes bounds the TLS files New reads: a CA bundle of every
// public root is about 200 KiB.
const maxTLSFileBytes = 4 << 20

// readRegularFileMax reads the regular file at path, of at most limit
// bytes, without blocking on a FIFO or reading a device without end.
func readRegularFileMax(path string, limit int64) (string, error) {
	// O_NONBLOCK: opening a FIFO that has no writer would block otherwise;
	// for regular files it changes nothing.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", pathErrorReason(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", pathErrorReason(err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file (%v): point it at the file that holds the secret", info.Mode().Type())
	}
	tooLarge := fmt.Errorf("larger than %d KiB: is it the right file?", limit>>10)
	if info.Size() > limit {
		return "", tooLarge
	}
	// The file may grow between Stat and read: the limit holds regardless.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", pathErrorReason(err)
	}
	if int64(len(b)) > limit {
		return "", tooLarge
	}
	return string(b), nil
}

// pathErrorReason drops the *fs.PathError wrapper, whose text repeats the
// path readSecretFile already names.
func pathErrorReason(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
