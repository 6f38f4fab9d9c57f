package budget

import (
	"context"
	"sync"
	"time"

	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
)

// MemoryStore keeps the counters in this process: the standalone gateway (no --redis-url) and
// tests. It implements the Redis scripts' semantics step by step, with the same key names and
// expiries, so the same test suite runs against both stores.
type MemoryStore struct {
	mu    sync.Mutex
	teams map[string]*memTeam
	ops   int
}

type memHold struct {
	expiry time.Time
	micros int64
}

type memCounter struct {
	n   int64
	exp time.Time
}

type memTeam struct {
	keys  ledger.Keys
	holds map[string]memHold
	// earliest is at or before the earliest expiry of holds (zero: unknown): admitting adds
	// holds, settling removes them and refreshing only moves expiries later, so it stays a
	// lower bound between the purges that recompute it.
	earliest time.Time
	held     int64
	counters map[string]memCounter // spend, rpm, tpm, vel, soft and settled keys
	trip     trip
	tripExp  time.Time
}

// NewMemoryStore returns an empty in-process store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{teams: map[string]*memTeam{}} }

// Close does nothing.
func (*MemoryStore) Close() error { return nil }

func (*MemoryStore) ping(context.Context) error { return nil }

// team returns the team's state; the caller holds mu. Every 4096 calls expired counters of
// all teams are swept.
func (s *MemoryStore) team(name string, now time.Time) *memTeam {
	if s.ops++; s.ops%4096 == 0 {
		for _, t := range s.teams {
			for k, c := range t.counters {
				if !c.exp.After(now) {
					delete(t.counters, k)
				}
			}
		}
	}
	t := s.teams[name]
	if t == nil {
		t = &memTeam{keys: ledger.KeysFor(name), holds: map[string]memHold{}, counters: map[string]memCounter{}}
		s.teams[name] = t
	}
	return t
}

func (t *memTeam) get(key string, now time.Time) int64 {
	c, ok := t.counters[key]
	if !ok || !c.exp.After(now) {
		return 0
	}
	return c.n
}

// incr adds d to key and sets its expiry to now+ttl (INCRBY + PEXPIRE).
func (t *memTeam) incr(key string, d int64, now time.Time, ttl time.Duration) int64 {
	n := t.get(key, now) + d
	t.counters[key] = memCounter{n: n, exp: now.Add(ttl)}
	return n
}

// setNX sets key when absent (SET NX PX) and reports whether it did.
func (t *memTeam) setNX(key string, now time.Time, ttl time.Duration) bool {
	if c, ok := t.counters[key]; ok && c.exp.After(now) {
		return false
	}
	t.counters[key] = memCounter{n: 1, exp: now.Add(ttl)}
	return true
}

// purge drops the holds expired at now. It scans them only once the earliest expiry has
// passed, so an admission costs the same with 10,000 calls of the team open as with none
// (like ZRANGEBYSCORE in the Redis script), instead of a scan of every open call under the
// store's lock.
func (t *memTeam) purge(now time.Time) int64 {
	if len(t.holds) == 0 || now.Before(t.earliest) {
		return 0
	}
	var n int64
	var earliest time.Time
	for id, h := range t.holds {
		if !h.expiry.After(now) {
			t.held -= h.micros
			delete(t.holds, id)
			n++
		} else if earliest.IsZero() || h.expiry.Before(earliest) {
			earliest = h.expiry
		}
	}
	t.earliest = earliest
	return n
}

func (t *memTeam) tripUntil(now time.Time) int64 {
	if t.trip.Until.IsZero() || !t.tripExp.After(now) {
		return 0
	}
	return t.trip.Until.UnixMilli()
}

func (s *MemoryStore) admit(_ context.Context, a *admitArgs) (admitResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := a.now
	t := s.team(a.team, now)
	k := t.keys
	r := admitResult{purged: t.purge(now)}
	r.held, r.inflight = t.held, int64(len(t.holds))
	r.tripAt = t.tripUntil(now)
	r.rpmPrev, r.rpmCur = t.get(k.RPM(a.minute-1), now), t.get(k.RPM(a.minute), now)
	r.tpmPrev, r.tpmCur = t.get(k.TPM(a.minute-1), now), t.get(k.TPM(a.minute), now)
	for i, w := range ledger.Windows {
		r.spent[i] = t.get(k.Spend(w, a.buckets[i].ID), now)
	}
	if _, ok := t.holds[a.id]; ok {
		return r, nil
	}
	switch {
	case r.tripAt > now.UnixMilli():
		r.code = rejectRunaway
	case a.conc > 0 && r.inflight >= a.conc:
		r.code = rejectConcurrent
	case a.rpm > 0 && ledger.SlidingCount(r.rpmPrev, r.rpmCur, a.elapsedMs)+1 > a.rpm:
		r.code = rejectRPM
	case a.tpm > 0 && ledger.SlidingCount(r.tpmPrev, r.tpmCur, a.elapsedMs)+a.tokens > a.tpm:
		r.code = rejectTPM
	}
	for i := range ledger.Windows {
		if r.code == admitOK && a.hard[i] > 0 && r.spent[i]+r.held+a.micros > a.hard[i] {
			r.code = rejectSpend
		}
	}
	if r.code != admitOK {
		return r, nil
	}
	t.holds[a.id] = memHold{expiry: a.expiry, micros: a.micros}
	if len(t.holds) == 1 || a.expiry.Before(t.earliest) {
		t.earliest = a.expiry
	}
	t.held += a.micros
	t.incr(k.RPM(a.minute), 1, now, ledger.RateKeyTTL)
	if a.tokens > 0 {
		t.incr(k.TPM(a.minute), a.tokens, now, ledger.RateKeyTTL)
	}
	return r, nil
}

func (s *MemoryStore) settle(_ context.Context, a *settleArgs) (settleResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := a.now
	t := s.team(a.team, now)
	k := t.keys
	var r settleResult
	if !t.setNX(k.Settled(a.id), now, a.markerTTL) {
		r.duplicate = true
		return r, nil
	}
	if h, ok := t.holds[a.id]; ok {
		delete(t.holds, a.id)
		t.held -= h.micros
		r.released = true
	}
	for i, w := range ledger.Windows {
		key := k.Spend(w, a.buckets[i].ID)
		if a.actual > 0 {
			r.spent[i] = t.incr(key, a.actual, now, ledger.SpendTTL(a.buckets[i], now))
		} else {
			r.spent[i] = t.get(key, now)
		}
		if a.soft[i] > 0 && r.spent[i] >= a.soft[i] {
			r.softNew[i] = t.setNX(k.Soft(w, a.buckets[i].ID), now, ledger.SpendTTL(a.buckets[i], now))
		}
	}
	if tk := k.TPM(a.tpmMinute); a.tokenDelta != 0 && t.get(tk, now) != 0 {
		c := t.counters[tk]
		c.n += a.tokenDelta
		t.counters[tk] = c
	}
	if a.actual > 0 {
		vc := t.incr(k.Vel(a.minute), a.actual, now, ledger.RateKeyTTL)
		r.rate = ledger.SlidingCount(t.get(k.Vel(a.minute-1), now), vc, a.elapsedMs)
		if rw := a.runaway; rw != nil && rw.SpendPerMinuteMicros > 0 && r.rate > rw.SpendPerMinuteMicros &&
			t.tripUntil(now) <= now.UnixMilli() {
			cooldown := time.Duration(rw.CooldownSeconds) * time.Second
			t.trip = trip{Until: now.Add(cooldown).UTC(), At: now.UTC(), RateMicros: r.rate, ThresholdMicros: rw.SpendPerMinuteMicros}
			t.tripExp = now.Add(cooldown + ledger.TripRecordTTL)
			r.tripped, r.tripUntil = true, t.trip.Until.UnixMilli()
		}
	}
	return r, nil
}

func (s *MemoryStore) refresh(_ context.Context, holds []holdRef, expiry time.Time, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range holds {
		t := s.teams[h.team]
		if t == nil {
			continue
		}
		if x, ok := t.holds[h.id]; ok && expiry.After(x.expiry) {
			x.expiry = expiry
			t.holds[h.id] = x
		}
	}
	return nil
}

func (s *MemoryStore) trips(_ context.Context, teams []string) (map[string]trip, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]trip{}
	for _, name := range teams {
		if t := s.teams[name]; t != nil && !t.trip.Until.IsZero() {
			out[name] = t.trip
		}
	}
	return out, nil
}

// state computes what ledger.Read reads from Redis.
func (s *MemoryStore) state(_ context.Context, team string, now time.Time) (ledger.Counters, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.team(team, now)
	k := t.keys
	b := ledger.BucketsAt(now)
	minute, el := ledger.MinuteOf(now)
	var c ledger.Counters
	for i, w := range ledger.Windows {
		c.Spent[i] = t.get(k.Spend(w, b[i].ID), now)
	}
	for _, h := range t.holds {
		if h.expiry.After(now) {
			c.HeldMicros += h.micros
			c.InFlight++
		}
	}
	c.RequestsLastMinute = ledger.SlidingCount(t.get(k.RPM(minute-1), now), t.get(k.RPM(minute), now), el)
	c.TokensLastMinute = ledger.SlidingCount(t.get(k.TPM(minute-1), now), t.get(k.TPM(minute), now), el)
	c.SpendLastMinuteMicros = ledger.SlidingCount(t.get(k.Vel(minute-1), now), t.get(k.Vel(minute), now), el)
	if t.tripExp.After(now) {
		tr := t.trip
		c.LastTrip = &tr
	}
	return c, nil
}
