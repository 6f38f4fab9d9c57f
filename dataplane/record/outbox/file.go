package outbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/posthog/llm-gateway/dataplane/record/event"
)

// FileOptions configure a file outbox.
type FileOptions struct {
	// MaxBytes bounds the bytes of all segment files; Append returns ErrFull beyond it.
	// Default 1 GiB.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started. Default 8 MiB.
	SegmentBytes int64
	// Sync fsyncs every append, so appended events also survive a machine crash (without it
	// they survive a process crash: the kernel has them). Default off.
	Sync   bool
	Logger *slog.Logger
}

const (
	segSuffix = ".seg"
	ackSuffix = ".ack"
)

// fileOutbox is an append-only log of segment files in one directory, owned by one process
// (an exclusive flock on dir/LOCK). Each segment "<n>.seg" holds one record per line; its
// sibling "<n>.ack" holds the byte offsets (8 bytes little-endian each) of acked records. A
// segment whose records are all acked is deleted. After a restart every unacked record is
// handed out again.
type fileOutbox struct {
	dir  string
	opts FileOptions
	log  *slog.Logger
	lock *os.File

	mu    sync.Mutex
	segs  []*segment // ascending by num
	cur   *segment   // segment appends go to; nil until the first append after a rotation
	next  uint64     // number of the next segment to create
	total int64      // bytes of all segments on disk
	// read position: segment number and offset of the next record to hand out.
	readNum uint64
	readOff int64
	closed  bool
}

// errClosed is returned by a closed file outbox.
var errClosed = errors.New("event outbox is closed")

type segment struct {
	num    uint64
	f      *os.File
	ack    *os.File
	size   int64 // bytes of whole records
	count  int   // records
	acked  map[int64]struct{}
	sealed bool
}

// NewFile opens (or creates) a file outbox in dir. Unacked entries of a previous run
// are handed out again by Read.
func NewFile(dir string, opts FileOptions) (Outbox, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 1 << 30
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 8 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create outbox dir %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open outbox lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("outbox %s is used by another process: %w", dir, err)
	}
	o := &fileOutbox{dir: dir, opts: opts, log: opts.Logger, lock: lock, next: 1}
	if err := o.load(); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

func (o *fileOutbox) path(num uint64, suffix string) string {
	return filepath.Join(o.dir, fmt.Sprintf("%020d%s", num, suffix))
}

// load opens the segments left by a previous run: counts their records, reads their acks,
// deletes the fully acked ones and cuts a torn last record.
func (o *fileOutbox) load() error {
	names, err := filepath.Glob(filepath.Join(o.dir, "*"+segSuffix))
	if err != nil {
		return fmt.Errorf("list outbox segments: %w", err)
	}
	var nums []uint64
	for _, n := range names {
		num, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(n), segSuffix), 10, 64)
		if err == nil {
			nums = append(nums, num)
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	for _, num := range nums {
		s, err := o.loadSegment(num)
		if err != nil {
			return err
		}
		o.next = num + 1
		if len(s.acked) >= s.count {
			o.remove(s)
			continue
		}
		o.segs = append(o.segs, s)
		o.total += s.size
	}
	if len(o.segs) > 0 {
		o.readNum = o.segs[0].num
	}
	// Orphan ack files (segment already deleted).
	acks, _ := filepath.Glob(filepath.Join(o.dir, "*"+ackSuffix))
	for _, a := range acks {
		if _, err := os.Stat(strings.TrimSuffix(a, ackSuffix) + segSuffix); errors.Is(err, os.ErrNotExist) {
			os.Remove(a)
		}
	}
	return nil
}

func (o *fileOutbox) loadSegment(num uint64) (*segment, error) {
	f, err := os.OpenFile(o.path(num, segSuffix), os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open outbox segment %d: %w", num, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read outbox segment %d: %w", num, err)
	}
	s := &segment{num: num, f: f, acked: map[int64]struct{}{}, sealed: true}
	for off := 0; off < len(data); {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			// A torn record at the end (crash mid-append): it was never acknowledged to
			// Record's caller as stored only if the write itself was cut; drop it.
			o.log.Warn("outbox: dropping torn record at segment end", "segment", num, "bytes", len(data)-off)
			if err := f.Truncate(int64(off)); err != nil {
				f.Close()
				return nil, fmt.Errorf("truncate outbox segment %d: %w", num, err)
			}
			break
		}
		s.count++
		off += nl + 1
		s.size = int64(off)
	}
	if ack, err := os.ReadFile(o.path(num, ackSuffix)); err == nil {
		for i := 0; i+8 <= len(ack); i += 8 {
			s.acked[int64(binary.LittleEndian.Uint64(ack[i:]))] = struct{}{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		f.Close()
		return nil, fmt.Errorf("read outbox acks %d: %w", num, err)
	}
	return s, nil
}

// remove closes and deletes a segment and its ack file.
func (o *fileOutbox) remove(s *segment) {
	s.f.Close()
	if s.ack != nil {
		s.ack.Close()
	}
	if err := os.Remove(o.path(s.num, segSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
		o.log.Error("outbox: remove segment", "segment", s.num, "err", err)
	}
	os.Remove(o.path(s.num, ackSuffix))
}

var recordBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (o *fileOutbox) Append(_ context.Context, entries []event.Entry) error {
	bp := recordBufs.Get().(*[]byte)
	defer recordBufs.Put(bp)
	buf := (*bp)[:0]
	n := 0
	for i := range entries {
		buf = encodeRecord(buf, &entries[i])
		if bytes.IndexByte(buf[n:], '\n') >= 0 {
			return fmt.Errorf("outbox: event %s is not single-line JSON", entries[i].UUID)
		}
		buf = append(buf, '\n')
		n = len(buf)
	}
	*bp = buf
	return o.appendRecords(buf, len(entries))
}

func (o *fileOutbox) appendRecords(recs []byte, count int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errClosed
	}
	if o.total+int64(len(recs)) > o.opts.MaxBytes {
		return ErrFull
	}
	if o.cur != nil && o.cur.size > 0 && o.cur.size+int64(len(recs)) > o.opts.SegmentBytes {
		o.seal()
	}
	if o.cur == nil {
		f, err := os.OpenFile(o.path(o.next, segSuffix), os.O_CREATE|os.O_EXCL|os.O_RDWR|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("create outbox segment: %w", err)
		}
		o.cur = &segment{num: o.next, f: f, acked: map[int64]struct{}{}}
		o.next++
		o.segs = append(o.segs, o.cur)
		if len(o.segs) == 1 {
			o.readNum, o.readOff = o.cur.num, 0
		}
	}
	if _, err := o.cur.f.Write(recs); err != nil {
		// A partial write leaves a torn record; seal the segment so the next append starts
		// clean, and let the torn tail be cut on the next load.
		o.seal()
		return fmt.Errorf("append to outbox: %w", err)
	}
	if o.opts.Sync {
		if err := o.cur.f.Sync(); err != nil {
			return fmt.Errorf("sync outbox: %w", err)
		}
	}
	o.cur.size += int64(len(recs))
	o.cur.count += count
	o.total += int64(len(recs))
	return nil
}

// seal stops appending to the current segment (deleting it if everything in it is acked).
func (o *fileOutbox) seal() {
	s := o.cur
	o.cur = nil
	if s == nil {
		return
	}
	s.sealed = true
	o.maybeRemove(s)
}

// maybeRemove deletes a sealed segment once all its records are acked.
func (o *fileOutbox) maybeRemove(s *segment) {
	if !s.sealed || len(s.acked) < s.count {
		return
	}
	for i, x := range o.segs {
		if x == s {
			o.segs = append(o.segs[:i], o.segs[i+1:]...)
			break
		}
	}
	o.total -= s.size
	o.remove(s)
	if o.readNum == s.num {
		o.readNum, o.readOff = o.next, 0
		for _, x := range o.segs {
			if x.num > s.num {
				o.readNum = x.num
				break
			}
		}
	}
}

func (o *fileOutbox) segment(num uint64) *segment {
	for _, s := range o.segs {
		if s.num == num {
			return s
		}
	}
	return nil
}

func (o *fileOutbox) Read(_ context.Context, max int) ([]event.Entry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, errClosed
	}
	var out []event.Entry
	for len(out) < max {
		s := o.segment(o.readNum)
		if s == nil {
			// The read segment is gone (fully acked); move to the first later one.
			var nxt *segment
			for _, x := range o.segs {
				if x.num > o.readNum {
					nxt = x
					break
				}
			}
			if nxt == nil {
				return out, nil
			}
			o.readNum, o.readOff = nxt.num, 0
			continue
		}
		if o.readOff >= s.size {
			if !s.sealed {
				return out, nil // caught up with the appends
			}
			o.readNum, o.readOff = s.num+1, 0
			continue
		}
		chunk := min(s.size-o.readOff, 1<<20)
		var data []byte
		for {
			data = make([]byte, chunk)
			if _, err := s.f.ReadAt(data, o.readOff); err != nil && !errors.Is(err, io.EOF) {
				return out, fmt.Errorf("read outbox segment %d: %w", s.num, err)
			}
			if bytes.IndexByte(data, '\n') >= 0 || chunk >= s.size-o.readOff {
				break
			}
			chunk = min(chunk*2, s.size-o.readOff)
		}
		for len(out) < max {
			nl := bytes.IndexByte(data, '\n')
			if nl < 0 {
				break
			}
			off := o.readOff
			rec := data[:nl]
			data = data[nl+1:]
			o.readOff += int64(nl + 1)
			if _, done := s.acked[off]; done {
				continue
			}
			e, ok := decodeRecord(rec)
			if !ok {
				o.log.Error("outbox: skipping corrupt record", "segment", s.num, "offset", off)
				o.ackLocked(s, off)
				continue
			}
			e.ID = formatFileID(s.num, off)
			out = append(out, e)
		}
	}
	return out, nil
}

func formatFileID(num uint64, off int64) string {
	return strconv.FormatUint(num, 10) + ":" + strconv.FormatInt(off, 10)
}

func parseFileID(id string) (uint64, int64, error) {
	a, b, ok := strings.Cut(id, ":")
	if !ok {
		return 0, 0, fmt.Errorf("bad outbox id %q", id)
	}
	num, err1 := strconv.ParseUint(a, 10, 64)
	off, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad outbox id %q", id)
	}
	return num, off, nil
}

func (o *fileOutbox) Ack(_ context.Context, ids []string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	offs := map[*segment][]int64{}
	var order []*segment
	for _, id := range ids {
		num, off, err := parseFileID(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s := o.segment(num)
		if s == nil {
			continue // already deleted: acked before
		}
		if _, ok := offs[s]; !ok {
			order = append(order, s)
		}
		offs[s] = append(offs[s], off)
	}
	for _, s := range order {
		if err := o.ackLocked(s, offs[s]...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ackLocked records offsets of s as acked with one write, then deletes (or rotates away from)
// the segment when everything in it is acked.
func (o *fileOutbox) ackLocked(s *segment, offs ...int64) error {
	buf := make([]byte, 0, 8*len(offs))
	for _, off := range offs {
		if _, done := s.acked[off]; !done {
			buf = binary.LittleEndian.AppendUint64(buf, uint64(off))
		}
	}
	if len(buf) == 0 {
		return nil
	}
	if s.ack == nil {
		f, err := os.OpenFile(o.path(s.num, ackSuffix), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open outbox acks %d: %w", s.num, err)
		}
		s.ack = f
	}
	if _, err := s.ack.Write(buf); err != nil {
		return fmt.Errorf("write outbox acks %d: %w", s.num, err)
	}
	for _, off := range offs {
		s.acked[off] = struct{}{}
	}
	if s == o.cur && len(s.acked) >= s.count && o.readNum == s.num && o.readOff >= s.size &&
		s.size >= o.opts.SegmentBytes/8 {
		// Everything appended so far is shipped and the segment is big enough to be worth
		// a new file: the next append starts a fresh segment and this one is deleted.
		o.seal()
		return nil
	}
	o.maybeRemove(s)
	return nil
}

func (o *fileOutbox) Drained(context.Context) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, x := range o.segs {
		if (x.num == o.readNum && o.readOff < x.size) || (x.num > o.readNum && x.size > 0) {
			return false, nil
		}
	}
	return true, nil
}

func (o *fileOutbox) Touch(context.Context, []string) error { return nil }

func (o *fileOutbox) Stats(context.Context) (Stats, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n int64
	for _, s := range o.segs {
		n += int64(s.count - len(s.acked))
	}
	return Stats{Entries: n, Used: o.total, Limit: o.opts.MaxBytes, Unit: "bytes"}, nil
}

func (o *fileOutbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	for _, s := range o.segs {
		s.f.Close()
		if s.ack != nil {
			s.ack.Close()
		}
	}
	o.segs, o.cur = nil, nil
	if o.lock != nil {
		syscall.Flock(int(o.lock.Fd()), syscall.LOCK_UN)
		o.lock.Close()
		o.lock = nil
	}
	return nil
}
