package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/posthog/llm-gateway/dataplane/record/event"
)

// RedisOptions configure a Redis stream outbox.
type RedisOptions struct {
	// MaxEntries bounds the stream length (XLEN, unacked entries: acked ones are deleted);
	// Append returns ErrFull beyond it. Default 1,000,000.
	MaxEntries int64
	// ClaimIdle is how long an entry may sit unacked with another consumer before this one
	// claims it (XAUTOCLAIM): that consumer is presumed dead. Live consumers Touch their
	// in-flight entries well within it. Default 60s.
	ClaimIdle time.Duration
	Logger    *slog.Logger
}

// redisOutbox is a Redis stream shared by every pod, read through one consumer group. Each
// pod is one consumer (its pod name). Entries are XADDed (never trimmed), delivered with
// XREADGROUP, and XACKed + XDELed once capture accepted them; entries left pending by a dead
// consumer are claimed with XAUTOCLAIM after ClaimIdle.
type redisOutbox struct {
	rdb                     redis.UniversalClient
	stream, group, consumer string
	opts                    RedisOptions
	log                     *slog.Logger

	mu          sync.Mutex
	pelDone     bool   // own pending entries of a previous run handed out
	pelCursor   string // last id of that scan
	claimCursor string
	lastClaim   time.Time
	lastAdded   string // highest id this instance appended
}

// appendScript adds entries unless the stream would exceed its limit: one round trip, and no
// MAXLEN trimming that could drop unacked events. Returns the last id, or "" when full.
var appendScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local count = (#ARGV - 1) / 4
if limit > 0 and redis.call('XLEN', KEYS[1]) + count > limit then
  return ''
end
local id = ''
for i = 0, count - 1 do
  local b = 2 + i * 4
  id = redis.call('XADD', KEYS[1], '*', 'u', ARGV[b], 'h', ARGV[b + 1], 'k', ARGV[b + 2], 'e', ARGV[b + 3])
end
return id
`)

// NewRedis uses stream with consumer group group (created if missing) as consumer.
// consumer must be unique per process and stable across restarts when possible (the pod
// name): a restarted process first re-reads its own pending entries.
func NewRedis(ctx context.Context, rdb redis.UniversalClient, stream, group, consumer string, opts RedisOptions) (Outbox, error) {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 1_000_000
	}
	if opts.ClaimIdle <= 0 {
		opts.ClaimIdle = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if consumer == "" {
		return nil, errors.New("redis outbox: consumer name is required")
	}
	o := &redisOutbox{
		rdb: rdb, stream: stream, group: group, consumer: consumer, opts: opts, log: opts.Logger,
		pelCursor: "0", claimCursor: "0-0",
	}
	if err := o.ensureGroup(ctx); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *redisOutbox) ensureGroup(ctx context.Context) error {
	err := o.rdb.XGroupCreateMkStream(ctx, o.stream, o.group, "0").Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", o.group, o.stream, err)
	}
	return nil
}

func (o *redisOutbox) Append(ctx context.Context, entries []event.Entry) error {
	args := make([]any, 0, 1+4*len(entries))
	args = append(args, o.opts.MaxEntries)
	for i := range entries {
		e := &entries[i]
		args = append(args, e.UUID, e.Dest.Host, e.Dest.APIKey, e.Event)
	}
	id, err := appendScript.Run(ctx, o.rdb, []string{o.stream}, args...).Text()
	if err != nil {
		return fmt.Errorf("append %d events to stream %s: %w", len(entries), o.stream, err)
	}
	if id == "" {
		return ErrFull
	}
	o.mu.Lock()
	if streamIDLess(o.lastAdded, id) {
		o.lastAdded = id
	}
	o.mu.Unlock()
	return nil
}

func (o *redisOutbox) Read(ctx context.Context, max int) ([]event.Entry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []event.Entry
	// 1. Our own pending entries from a previous run under the same consumer name.
	for !o.pelDone && len(out) < max {
		msgs, err := o.readGroup(ctx, o.pelCursor, max-len(out))
		if err != nil {
			return out, err
		}
		if len(msgs) == 0 {
			o.pelDone = true
			break
		}
		o.pelCursor = msgs[len(msgs)-1].ID
		out = o.appendMessages(ctx, out, msgs)
	}
	// 2. Entries abandoned by dead consumers.
	if len(out) < max && time.Since(o.lastClaim) >= o.opts.ClaimIdle/4 {
		msgs, next, err := o.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: o.stream, Group: o.group, Consumer: o.consumer,
			MinIdle: o.opts.ClaimIdle, Start: o.claimCursor, Count: int64(max - len(out)),
		}).Result()
		if err != nil {
			return out, o.groupErr(ctx, fmt.Errorf("claim idle entries of %s: %w", o.stream, err))
		}
		o.claimCursor = next
		if next == "0-0" {
			o.lastClaim = time.Now()
		}
		if len(msgs) > 0 {
			o.log.Info("outbox: claimed entries of a dead consumer", "stream", o.stream, "entries", len(msgs))
		}
		out = o.appendMessages(ctx, out, msgs)
	}
	// 3. New entries.
	if len(out) < max {
		msgs, err := o.readGroup(ctx, ">", max-len(out))
		if err != nil {
			return out, err
		}
		out = o.appendMessages(ctx, out, msgs)
	}
	return out, nil
}

func (o *redisOutbox) readGroup(ctx context.Context, id string, count int) ([]redis.XMessage, error) {
	res, err := o.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: o.group, Consumer: o.consumer, Streams: []string{o.stream, id},
		Count: int64(count), Block: -1,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, o.groupErr(ctx, fmt.Errorf("read stream %s: %w", o.stream, err))
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res[0].Messages, nil
}

// groupErr recreates the consumer group when Redis lost it (restart without persistence).
func (o *redisOutbox) groupErr(ctx context.Context, err error) error {
	if strings.Contains(err.Error(), "NOGROUP") {
		if gerr := o.ensureGroup(ctx); gerr != nil {
			return errors.Join(err, gerr)
		}
	}
	return err
}

// appendMessages converts stream messages; entries deleted meanwhile (nil fields) are acked.
func (o *redisOutbox) appendMessages(ctx context.Context, out []event.Entry, msgs []redis.XMessage) []event.Entry {
	var gone []string
	for _, m := range msgs {
		ev, _ := m.Values["e"].(string)
		if ev == "" {
			gone = append(gone, m.ID)
			continue
		}
		u, _ := m.Values["u"].(string)
		h, _ := m.Values["h"].(string)
		k, _ := m.Values["k"].(string)
		out = append(out, event.Entry{ID: m.ID, UUID: u, Dest: event.Destination{Host: h, APIKey: k}, Event: []byte(ev)})
	}
	if len(gone) > 0 {
		o.rdb.XAck(ctx, o.stream, o.group, gone...)
	}
	return out
}

func (o *redisOutbox) Ack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := o.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, o.stream, o.group, ids...)
		p.XDel(ctx, o.stream, ids...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ack %d entries of %s: %w", len(ids), o.stream, err)
	}
	return nil
}

// Touch re-claims in-flight entries for this consumer, resetting their idle time so that no
// other consumer takes them while capture is retried.
func (o *redisOutbox) Touch(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	err := o.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
		Stream: o.stream, Group: o.group, Consumer: o.consumer, MinIdle: 0, Messages: ids,
	}).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("touch %d entries of %s: %w", len(ids), o.stream, err)
	}
	return nil
}

func (o *redisOutbox) Stats(ctx context.Context) (Stats, error) {
	n, err := o.rdb.XLen(ctx, o.stream).Result()
	if err != nil {
		return Stats{}, fmt.Errorf("length of %s: %w", o.stream, err)
	}
	return Stats{Entries: n, Used: n, Limit: o.opts.MaxEntries, Unit: "entries"}, nil
}

// Drained reports whether every entry this instance appended has been delivered to some
// consumer of the group (so a live consumer owns it): the group's last-delivered id has
// passed our last append.
func (o *redisOutbox) Drained(ctx context.Context) (bool, error) {
	o.mu.Lock()
	last, pelDone := o.lastAdded, o.pelDone
	o.mu.Unlock()
	if !pelDone {
		return false, nil
	}
	if last == "" {
		return true, nil
	}
	groups, err := o.rdb.XInfoGroups(ctx, o.stream).Result()
	if err != nil {
		return false, fmt.Errorf("groups of %s: %w", o.stream, err)
	}
	for _, g := range groups {
		if g.Name == o.group {
			return !streamIDLess(g.LastDeliveredID, last), nil
		}
	}
	return false, nil
}

func (o *redisOutbox) Close() error { return nil }

// streamIDLess compares stream ids "ms-seq"; "" is smaller than everything.
func streamIDLess(a, b string) bool {
	if a == "" || b == "" {
		return a == "" && b != ""
	}
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	if len(am) != len(bm) {
		return len(am) < len(bm)
	}
	if am != bm {
		return am < bm
	}
	if len(as) != len(bs) {
		return len(as) < len(bs)
	}
	return as < bs
}
