package redact

import (
	"errors"
	"io"
	"sync"
)

// ErrClosed is returned by Write and Flush after Close.
var ErrClosed = errors.New("redact: write to closed writer")

// Writer redacts a byte stream on its way to an underlying writer, such as
// a command's output streamed to a chat thread. A secret split across two
// Write calls is still hidden: Writer holds back what it has seen from
// where an unfinished match starts (the bytes that are the start of some
// secret form, with any separators after them), because the next Write
// may complete it.
//
// Because of that hold-back, output is only complete after Flush or Close:
// call Flush when the stream pauses (the command finished one step and the
// reader should see everything) and Close at the end. Close flushes and
// does not close the underlying writer. Writer is safe for concurrent use;
// concurrent writes are serialised in call order.
type Writer struct {
	r *Redactor

	mu      sync.Mutex
	w       io.Writer
	pending []byte // received, not yet written
	out     []byte // scratch for the redacted output
	spans   []span
	err     error // sticky error of the underlying writer
	closed  bool
}

// Writer returns a Writer that redacts everything written to it before
// passing it on to w. It uses the secrets known at each Write, so values
// added later apply to data written later.
func (r *Redactor) Writer(w io.Writer) *Writer {
	return &Writer{r: r, w: w}
}

// Write accepts p and passes on everything that can no longer be part of a
// secret. It returns len(p) unless the writer is closed or the underlying
// writer failed (that error is returned now and by every later call).
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	m := w.r.m.Load()
	if m == nil && len(w.pending) == 0 {
		// No secrets: pass through without copying.
		if _, err := w.w.Write(p); err != nil {
			w.err = err
			return 0, err
		}
		return len(p), nil
	}
	w.pending = append(w.pending, p...)
	if err := w.emit(m, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes out everything held back, redacted. A secret whose first
// bytes were flushed and whose rest arrives later can no longer be
// recognised, so flush at natural breaks of the stream, not after every
// Write.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	return w.emit(w.r.m.Load(), true)
}

// Close flushes and makes later writes fail with ErrClosed. It does not
// close the underlying writer. Closing twice returns nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	var err error
	if w.err == nil {
		err = w.emit(w.r.m.Load(), true)
	} else {
		err = w.err
	}
	w.closed = true
	w.pending = nil
	return err
}

// emit writes the redacted safe prefix of pending (all of it when final).
func (w *Writer) emit(m *matcher, final bool) error {
	if len(w.pending) == 0 {
		return nil
	}
	if m == nil {
		return w.write(w.pending, len(w.pending))
	}
	var from int
	w.spans, from = scan(m, w.pending, w.spans[:0], false)
	cut := len(w.pending)
	if !final {
		// What the automaton is still in the middle of may become a
		// secret with the next bytes: hold it back.
		cut = from
	}
	if cut <= 0 {
		return nil
	}
	// A match that straddles the cut may still grow (merge with a longer
	// one) once more bytes arrive: keep it whole for the next round.
	safe := w.spans
	for len(safe) > 0 && safe[len(safe)-1].end > cut {
		if safe[len(safe)-1].start < cut {
			cut = safe[len(safe)-1].start
		}
		safe = safe[:len(safe)-1]
	}
	if cut == 0 {
		return nil
	}
	if len(safe) == 0 {
		return w.write(w.pending[:cut], cut)
	}
	w.out = m.replace(w.out[:0], w.pending[:cut], safe)
	return w.write(w.out, cut)
}

// write passes b to the underlying writer and drops the first consumed
// bytes of pending.
func (w *Writer) write(b []byte, consumed int) error {
	if _, err := w.w.Write(b); err != nil {
		w.err = err
		return err
	}
	n := copy(w.pending, w.pending[consumed:])
	w.pending = w.pending[:n]
	return nil
}
