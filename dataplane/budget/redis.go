package budget

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
)

var (
	//go:embed admit.lua
	admitLua    string
	admitScript = redis.NewScript(admitLua)
	//go:embed settle.lua
	settleLua    string
	settleScript = redis.NewScript(settleLua)
)

// RedisStore keeps the counters in Redis, shared by every pod. Admission and settlement are
// one Lua script each (one round trip); refresh and trip polling are one pipeline each.
type RedisStore struct {
	rdb redis.UniversalClient
}

// DefaultStoreTimeout bounds one store call; past it the call counts as a store failure and
// the budget's onStoreUnavailable decides.
const DefaultStoreTimeout = 200 * time.Millisecond

// NewRedisStore connects to the Redis at url: redis://[:password@]host:port[/db] or rediss://
// (TLS). Timeouts default to DefaultStoreTimeout; the Manager's per-call deadline also applies.
func NewRedisStore(url string) (*RedisStore, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	opts.DialTimeout = DefaultStoreTimeout
	opts.ReadTimeout = DefaultStoreTimeout
	opts.WriteTimeout = DefaultStoreTimeout
	opts.PoolTimeout = DefaultStoreTimeout
	opts.ContextTimeoutEnabled = true
	// Fail fast while Redis is down: the Manager probes it in the background instead.
	opts.DialerRetries = 1
	opts.DialerRetryTimeout = 10 * time.Millisecond
	// Both scripts are idempotent per reservation id, so one retry on a broken pooled
	// connection (e.g. after a Redis restart) is safe.
	opts.MaxRetries = 1
	return NewRedisStoreFromClient(redis.NewClient(opts)), nil
}

// NewRedisStoreFromClient uses an existing client (e.g. a redis.ClusterClient: every key of a
// team shares the hash tag {team}).
func NewRedisStoreFromClient(c redis.UniversalClient) *RedisStore { return &RedisStore{rdb: c} }

// Close closes the client.
func (s *RedisStore) Close() error { return s.rdb.Close() }

func (s *RedisStore) ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
func i64(v int64) string        { return strconv.FormatInt(v, 10) }

func (s *RedisStore) admit(ctx context.Context, a *admitArgs) (admitResult, error) {
	k := ledger.KeysFor(a.team)
	keys := []string{
		k.Res(), k.ResAmt(), k.Held(), k.Trip(),
		k.RPM(a.minute - 1), k.RPM(a.minute), k.TPM(a.minute - 1), k.TPM(a.minute),
	}
	for i, w := range ledger.Windows {
		keys = append(keys, k.Spend(w, a.buckets[i].ID))
	}
	args := []any{
		a.id, i64(a.now.UnixMilli()), i64(a.expiry.UnixMilli()), i64(a.micros), i64(a.tokens), i64(a.elapsedMs),
		i64(a.rpm), i64(a.tpm), i64(a.conc), ms(a.keyTTL), ms(ledger.RateKeyTTL),
		i64(a.hard[0]), i64(a.hard[1]), i64(a.hard[2]), i64(a.hard[3]),
	}
	v, err := admitScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return admitResult{}, fmt.Errorf("run admit script: %w", err)
	}
	if len(v) != 13 {
		return admitResult{}, fmt.Errorf("admit script replied %d values, want 13", len(v))
	}
	return admitResult{
		code: int(v[0]), purged: v[1], held: v[2], inflight: v[3],
		rpmPrev: v[4], rpmCur: v[5], tpmPrev: v[6], tpmCur: v[7], tripAt: v[8],
		spent: [4]int64{v[9], v[10], v[11], v[12]},
	}, nil
}

func (s *RedisStore) settle(ctx context.Context, a *settleArgs) (settleResult, error) {
	k := ledger.KeysFor(a.team)
	keys := []string{
		k.Settled(a.id), k.Res(), k.ResAmt(), k.Held(), k.Trip(),
		k.Vel(a.minute - 1), k.Vel(a.minute), k.TPM(a.tpmMinute),
	}
	for i, w := range ledger.Windows {
		keys = append(keys, k.Spend(w, a.buckets[i].ID))
	}
	for i, w := range ledger.Windows {
		keys = append(keys, k.Soft(w, a.buckets[i].ID))
	}
	var threshold, cooldown int64
	if a.runaway != nil {
		threshold, cooldown = a.runaway.SpendPerMinuteMicros, a.runaway.CooldownSeconds*1000
	}
	args := []any{
		a.id, i64(a.now.UnixMilli()), i64(a.actual), i64(a.tokenDelta), ms(a.markerTTL), i64(a.elapsedMs),
		i64(threshold), i64(cooldown),
	}
	for _, b := range a.buckets {
		args = append(args, ms(ledger.SpendTTL(b, a.now)))
	}
	for _, l := range a.soft {
		args = append(args, i64(l))
	}
	args = append(args, ms(time.Duration(cooldown)*time.Millisecond+ledger.TripRecordTTL), ms(ledger.RateKeyTTL))
	v, err := settleScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return settleResult{}, fmt.Errorf("run settle script: %w", err)
	}
	if len(v) != 13 {
		return settleResult{}, fmt.Errorf("settle script replied %d values, want 13", len(v))
	}
	r := settleResult{
		duplicate: v[0] == 1, released: v[1] == 1,
		spent:   [4]int64{v[2], v[3], v[4], v[5]},
		softNew: [4]bool{v[6] == 1, v[7] == 1, v[8] == 1, v[9] == 1},
		tripped: v[10] == 1, tripUntil: v[11], rate: v[12],
	}
	return r, nil
}

func (s *RedisStore) refresh(ctx context.Context, holds []holdRef, expiry time.Time, keyTTL time.Duration) error {
	if len(holds) == 0 {
		return nil
	}
	teams := map[string]bool{}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, h := range holds {
			k := ledger.KeysFor(h.team)
			// XX: only holds that still exist; GT: never shorten one.
			p.ZAddArgs(ctx, k.Res(), redis.ZAddArgs{XX: true, GT: true, Members: []redis.Z{{Score: float64(expiry.UnixMilli()), Member: h.id}}})
			if !teams[h.team] {
				teams[h.team] = true
				p.PExpire(ctx, k.Res(), keyTTL)
				p.PExpire(ctx, k.ResAmt(), keyTTL)
				p.PExpire(ctx, k.Held(), keyTTL)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("refresh %d holds: %w", len(holds), err)
	}
	return nil
}

func (s *RedisStore) trips(ctx context.Context, teams []string) (map[string]trip, error) {
	cmds := make([]*redis.SliceCmd, len(teams))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range teams {
			cmds[i] = p.HMGet(ctx, ledger.KeysFor(t).Trip(), ledger.TripFields...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read runaway trips of %d teams: %w", len(teams), err)
	}
	out := make(map[string]trip, len(teams))
	for i, t := range teams {
		if tr, ok := ledger.ParseTrip(cmds[i].Val()); ok {
			out[t] = tr
		}
	}
	return out, nil
}

func (s *RedisStore) state(ctx context.Context, team string, now time.Time) (ledger.Counters, error) {
	return ledger.Read(ctx, s.rdb, team, now)
}
