package outbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/test/redistest"
)

func testEntry(i int) event.Entry {
	id := fmt.Sprintf("uuid-%04d", i)
	return event.Entry{
		UUID:  id,
		Dest:  event.Destination{Host: "http://capture", APIKey: "phc_test"},
		Event: []byte(fmt.Sprintf(`{"uuid":%q,"event":"$ai_generation","properties":{"i":%d,"pad":"%0200d"}}`, id, i, i)),
	}
}

func appendN(t *testing.T, ob Outbox, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		require.NoError(t, ob.Append(context.Background(), []event.Entry{testEntry(i)}))
	}
}

func readAll(t *testing.T, ob Outbox) []event.Entry {
	t.Helper()
	var out []event.Entry
	for {
		es, err := ob.Read(context.Background(), 7)
		require.NoError(t, err)
		if len(es) == 0 {
			return out
		}
		out = append(out, es...)
	}
}

func uuids(es []event.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.UUID
	}
	return out
}

func ids(es []event.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	require.NoError(t, err)
	return m
}

func TestFileOutboxRestartRedeliversUnacked(t *testing.T) {
	dir := t.TempDir()
	opts := FileOptions{SegmentBytes: 1000} // a few records per segment
	ob, err := NewFile(dir, opts)
	require.NoError(t, err)
	appendN(t, ob, 0, 20)
	got := readAll(t, ob)
	require.Len(t, got, 20)
	require.Equal(t, testEntry(3).Event, got[3].Event)
	require.Equal(t, testEntry(3).Dest, got[3].Dest)
	require.Greater(t, len(segFiles(t, dir)), 3)

	// Ack the first 10 and every third of the rest; the rest were handed out but not acked.
	var acked []string
	for i, e := range got {
		if i < 10 || i%3 == 0 {
			acked = append(acked, e.ID)
		}
	}
	require.NoError(t, ob.Ack(context.Background(), acked))
	st, err := ob.Stats(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 20-len(acked), st.Entries)
	require.NoError(t, ob.Close())

	ob, err = NewFile(dir, opts)
	require.NoError(t, err)
	defer ob.Close()
	again := readAll(t, ob)
	var want []string
	for i := 10; i < 20; i++ {
		if i%3 != 0 {
			want = append(want, testEntry(i).UUID)
		}
	}
	require.Equal(t, want, uuids(again), "exactly the unacked entries, in order")

	// Appends after the restart go after them; acking everything deletes every segment.
	appendN(t, ob, 20, 3)
	rest := readAll(t, ob)
	require.Equal(t, []string{"uuid-0020", "uuid-0021", "uuid-0022"}, uuids(rest))
	require.NoError(t, ob.Ack(context.Background(), append(ids(again), ids(rest)...)))
	require.Empty(t, segFiles(t, dir), "fully acked segments are deleted")
	st, err = ob.Stats(context.Background())
	require.NoError(t, err)
	require.Zero(t, st.Entries)
	require.Zero(t, st.Used)
	drained, err := ob.Drained(context.Background())
	require.NoError(t, err)
	require.True(t, drained)
}

func TestFileOutboxCutsTornRecord(t *testing.T) {
	dir := t.TempDir()
	ob, err := NewFile(dir, FileOptions{})
	require.NoError(t, err)
	appendN(t, ob, 0, 3)
	require.NoError(t, ob.Close())
	segs := segFiles(t, dir)
	require.Len(t, segs, 1)
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"u":"torn","h":"x","k":"y","e":{"uu`) // a crash mid-append
	require.NoError(t, err)
	require.NoError(t, f.Close())

	ob, err = NewFile(dir, FileOptions{})
	require.NoError(t, err)
	defer ob.Close()
	require.Equal(t, []string{"uuid-0000", "uuid-0001", "uuid-0002"}, uuids(readAll(t, ob)))
	appendN(t, ob, 3, 1)
	require.Equal(t, []string{"uuid-0003"}, uuids(readAll(t, ob)))
}

func TestFileOutboxSkipsCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	ob, err := NewFile(dir, FileOptions{})
	require.NoError(t, err)
	appendN(t, ob, 0, 1)
	require.NoError(t, ob.Close())
	f, err := os.OpenFile(segFiles(t, dir)[0], os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString("not json\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	ob, err = NewFile(dir, FileOptions{})
	require.NoError(t, err)
	appendN(t, ob, 1, 1)
	got := readAll(t, ob)
	require.Equal(t, []string{"uuid-0000", "uuid-0001"}, uuids(got))
	require.NoError(t, ob.Ack(context.Background(), ids(got)))
	require.NoError(t, ob.Close())
	ob, err = NewFile(dir, FileOptions{})
	require.NoError(t, err)
	defer ob.Close()
	require.Empty(t, readAll(t, ob))
}

func TestFileOutboxSizeLimit(t *testing.T) {
	rec := len(encodeRecord(nil, &[]event.Entry{testEntry(0)}[0])) + 1
	ob, err := NewFile(t.TempDir(), FileOptions{MaxBytes: int64(3 * rec), SegmentBytes: int64(rec)})
	require.NoError(t, err)
	defer ob.Close()
	appendN(t, ob, 0, 3)
	require.ErrorIs(t, ob.Append(context.Background(), []event.Entry{testEntry(3)}), ErrFull)
	st, err := ob.Stats(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1.0, st.Fill())
	got := readAll(t, ob)
	require.NoError(t, ob.Ack(context.Background(), ids(got[:1])))
	require.NoError(t, ob.Append(context.Background(), []event.Entry{testEntry(4)}), "space freed by acks is reused")
}

func TestFileOutboxRefusesAfterClose(t *testing.T) {
	dir := t.TempDir()
	ob, err := NewFile(dir, FileOptions{})
	require.NoError(t, err)
	require.NoError(t, ob.Close())
	require.Error(t, ob.Append(context.Background(), []event.Entry{testEntry(0)}))
	require.Empty(t, segFiles(t, dir), "nothing is written after Close")
}

func TestFileOutboxIsExclusive(t *testing.T) {
	dir := t.TempDir()
	ob, err := NewFile(dir, FileOptions{})
	require.NoError(t, err)
	_, err = NewFile(dir, FileOptions{})
	require.ErrorContains(t, err, "used by another process")
	require.NoError(t, ob.Close())
	ob, err = NewFile(dir, FileOptions{})
	require.NoError(t, err)
	require.NoError(t, ob.Close())
}

func TestFileOutboxRejectsMultilineEvents(t *testing.T) {
	ob, err := NewFile(t.TempDir(), FileOptions{})
	require.NoError(t, err)
	defer ob.Close()
	e := testEntry(0)
	e.Event = []byte("{\"a\":\n1}")
	require.ErrorContains(t, ob.Append(context.Background(), []event.Entry{e}), "single-line")
}

func newRedisOutbox(t *testing.T, rdb *redis.Client, consumer string, opts RedisOptions) Outbox {
	t.Helper()
	ob, err := NewRedis(context.Background(), rdb, "test:events", "shipper", consumer, opts)
	require.NoError(t, err)
	return ob
}

func TestRedisOutbox(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	t.Run("append read ack", func(t *testing.T) {
		require.NoError(t, rdb.FlushAll(ctx).Err())
		a := newRedisOutbox(t, rdb, "pod-a", RedisOptions{})
		appendN(t, a, 0, 10)
		got := readAll(t, a)
		require.Len(t, got, 10)
		require.Equal(t, testEntry(4).Event, got[4].Event)
		require.Equal(t, testEntry(4).Dest, got[4].Dest)
		drained, err := a.Drained(ctx)
		require.NoError(t, err)
		require.True(t, drained)
		require.NoError(t, a.Ack(ctx, ids(got)))
		st, err := a.Stats(ctx)
		require.NoError(t, err)
		require.Zero(t, st.Entries, "acked entries are deleted from the stream")
	})

	t.Run("a dead consumer's entries are claimed", func(t *testing.T) {
		require.NoError(t, rdb.FlushAll(ctx).Err())
		dead := newRedisOutbox(t, rdb, "pod-dead", RedisOptions{})
		appendN(t, dead, 0, 5)
		require.Len(t, readAll(t, dead), 5) // read, never acked: the pod dies here

		fresh := newRedisOutbox(t, rdb, "pod-live", RedisOptions{ClaimIdle: time.Hour})
		require.Empty(t, readAll(t, fresh), "entries of a live consumer are not claimed")

		live := newRedisOutbox(t, rdb, "pod-live2", RedisOptions{ClaimIdle: 50 * time.Millisecond})
		var claimed []event.Entry
		require.Eventually(t, func() bool {
			es, err := live.Read(ctx, 100)
			require.NoError(t, err)
			claimed = append(claimed, es...)
			return len(claimed) == 5
		}, 10*time.Second, 20*time.Millisecond)
		require.Equal(t, []string{"uuid-0000", "uuid-0001", "uuid-0002", "uuid-0003", "uuid-0004"}, uuids(claimed))
		require.NoError(t, live.Ack(ctx, ids(claimed)))
		n, err := rdb.XLen(ctx, "test:events").Result()
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("touch keeps entries from being claimed", func(t *testing.T) {
		require.NoError(t, rdb.FlushAll(ctx).Err())
		a := newRedisOutbox(t, rdb, "pod-a", RedisOptions{})
		appendN(t, a, 0, 3)
		got := readAll(t, a)
		require.Len(t, got, 3)
		b := newRedisOutbox(t, rdb, "pod-b", RedisOptions{ClaimIdle: time.Hour})
		// Age the entries past b's claim threshold as seen by Redis, then touch them.
		require.NoError(t, rdb.Do(ctx, append([]any{"XCLAIM", "test:events", "shipper", "pod-a", 0},
			append(anys(ids(got)), "IDLE", int64(2*time.Hour/time.Millisecond), "JUSTID")...)...).Err())
		require.NoError(t, a.Touch(ctx, ids(got)))
		require.Empty(t, readAll(t, b))
	})

	t.Run("a restarted consumer re-reads its own pending entries", func(t *testing.T) {
		require.NoError(t, rdb.FlushAll(ctx).Err())
		a := newRedisOutbox(t, rdb, "pod-a", RedisOptions{})
		appendN(t, a, 0, 4)
		got := readAll(t, a)
		require.NoError(t, a.Ack(ctx, ids(got[:1])))
		again := newRedisOutbox(t, rdb, "pod-a", RedisOptions{ClaimIdle: time.Hour})
		require.Equal(t, []string{"uuid-0001", "uuid-0002", "uuid-0003"}, uuids(readAll(t, again)))
	})

	t.Run("size limit", func(t *testing.T) {
		require.NoError(t, rdb.FlushAll(ctx).Err())
		a := newRedisOutbox(t, rdb, "pod-a", RedisOptions{MaxEntries: 3})
		appendN(t, a, 0, 3)
		require.ErrorIs(t, a.Append(ctx, []event.Entry{testEntry(3)}), ErrFull)
		got := readAll(t, a)
		require.NoError(t, a.Ack(ctx, ids(got[:2])))
		appendN(t, a, 4, 2)
	})

	t.Run("redis restarted empty: the group is recreated", func(t *testing.T) {
		require.NoError(t, rdb.FlushAll(ctx).Err())
		a := newRedisOutbox(t, rdb, "pod-a", RedisOptions{})
		appendN(t, a, 0, 1)
		require.Len(t, readAll(t, a), 1)
		srv.Stop()
		require.Error(t, a.Append(ctx, []event.Entry{testEntry(1)}))
		srv.Restart()
		require.Eventually(t, func() bool { return a.Append(ctx, []event.Entry{testEntry(2)}) == nil }, 10*time.Second, 50*time.Millisecond)
		_, err := a.Read(ctx, 10) // NOGROUP: recreates the group
		require.Error(t, err)
		require.Equal(t, []string{"uuid-0002"}, uuids(readAll(t, a)))
	})
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func TestStreamIDLess(t *testing.T) {
	require.True(t, streamIDLess("", "1-0"))
	require.False(t, streamIDLess("1-0", ""))
	require.True(t, streamIDLess("9-0", "10-0"))
	require.True(t, streamIDLess("10-2", "10-10"))
	require.False(t, streamIDLess("10-10", "10-10"))
}
