package budget

import (
	"context"
	"time"

	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Store is the counter store behind a Manager: NewRedisStore (shared by every pod) or
// NewMemoryStore (one process). Both implement the same operations with the same semantics;
// every operation on Redis is one round trip (a Lua script or a pipeline). The methods are
// unexported: a Store is used only through a Manager.
type Store interface {
	// admit purges expired holds, checks every limit and, when all pass, records the hold.
	admit(ctx context.Context, a *admitArgs) (admitResult, error)
	// settle charges a call once (settlement marker), releases its hold and updates the
	// runaway breaker.
	settle(ctx context.Context, s *settleArgs) (settleResult, error)
	// refresh pushes the expiry of live holds forward.
	refresh(ctx context.Context, holds []holdRef, expiry time.Time, keyTTL time.Duration) error
	// trips reads the runaway trip of each team.
	trips(ctx context.Context, teams []string) (map[string]trip, error)
	// state reads a team's counters (on Redis: ledger.Read, as the operator does).
	state(ctx context.Context, team string, now time.Time) (ledger.Counters, error)
	ping(ctx context.Context) error
	Close() error
}

// Admission outcomes (the first element of the admit script's reply).
const (
	admitOK = iota
	rejectRunaway
	rejectConcurrent
	rejectRPM
	rejectTPM
	rejectSpend
)

type admitArgs struct {
	team      string
	id        string
	now       time.Time
	expiry    time.Time // of the hold
	keyTTL    time.Duration
	micros    int64
	tokens    int64
	minute    int64
	elapsedMs int64
	buckets   [ledger.NumWindows]ledger.Bucket
	hard      [4]int64
	rpm       int64
	tpm       int64
	conc      int64
}

type admitResult struct {
	code     int
	purged   int64 // expired holds removed by this call
	held     int64 // outstanding holds before this call
	inflight int64 // live holds before this call
	rpmPrev  int64
	rpmCur   int64
	tpmPrev  int64
	tpmCur   int64
	tripAt   int64 // unix ms the runaway suspension ends (0: none)
	spent    [4]int64
}

type settleArgs struct {
	team       string
	id         string
	now        time.Time
	actual     int64
	tokenDelta int64 // actual - reserved tokens, applied to the TPM minute of admission
	tpmMinute  int64
	minute     int64
	elapsedMs  int64
	buckets    [ledger.NumWindows]ledger.Bucket
	soft       [4]int64
	runaway    *snapshot.Runaway
	markerTTL  time.Duration
}

type settleResult struct {
	duplicate bool
	released  bool // the hold was still there (false: it had expired, or fail-open)
	spent     [4]int64
	softNew   [4]bool // a Soft limit reached for the first time in this window
	tripped   bool
	tripUntil int64 // unix ms
	rate      int64 // spend in the last minute (sliding), micro-dollars
}

type holdRef struct{ team, id string }

// trip is a runaway trip as recorded in the store.
type trip = ledger.Trip
