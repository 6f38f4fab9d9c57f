package budget

import (
	"fmt"
	"time"

	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// failOpenRetryAfter is the retry-after of a call rejected because the fail-open allowance is
// used up: the store may be back by then.
const failOpenRetryAfter = 5 * time.Second

// localTeam is a team's use of this pod's fail-open allowance: the spend of each current
// window (reset when the window rolls over) and the holds of its fail-open calls in flight.
type localTeam struct {
	held   int64
	bucket [4]string
	spent  [4]int64
}

func (m *Manager) localTeam(team string, now time.Time) *localTeam {
	lt := m.local[team]
	if lt == nil {
		lt = &localTeam{}
		m.local[team] = lt
	}
	for i, b := range ledger.BucketsAt(now) {
		if lt.bucket[i] != b.ID {
			lt.bucket[i], lt.spent[i] = b.ID, 0
		}
	}
	return lt
}

// failOpenAllowance is the spend a team may make per window on this pod while the store is
// unreachable: Budget.FailOpenAllowanceMicros, or 1% of its smallest Hard limit. A budget with
// no Hard limit has nothing to protect: -1, no cap.
func failOpenAllowance(b *snapshot.Budget, hard [4]int64) int64 {
	if b.FailOpenAllowanceMicros > 0 {
		return b.FailOpenAllowanceMicros
	}
	least := int64(-1)
	for _, h := range hard {
		if h > 0 && (least < 0 || h < least) {
			least = h
		}
	}
	if least < 0 {
		return -1
	}
	return least / 100
}

// storeDown decides a call the store could not: FailClosed rejects (503), FailOpen admits
// against this pod's allowance. Each team is logged once per outage.
func (m *Manager) storeDown(r Request, hard [4]int64, now time.Time, cause error) (*Reservation, error) {
	b := r.Budget
	failOpen := b.OnStoreUnavailable == snapshot.FailOpen
	m.mu.Lock()
	first := !m.outage[r.Team]
	m.outage[r.Team] = true
	m.mu.Unlock()
	if first {
		m.log.Error("budget store unreachable: applying onStoreUnavailable", "team", r.Team,
			"policy", b.OnStoreUnavailable, "error", cause)
	}
	if !failOpen {
		m.met.admissions.WithLabelValues(r.Team, "unavailable").Inc()
		return nil, &UnavailableError{Team: r.Team, Err: cause}
	}
	allow := failOpenAllowance(b, hard)
	m.mu.Lock()
	defer m.mu.Unlock()
	lt := m.localTeam(r.Team, now)
	if allow >= 0 {
		for i := range ledger.Windows {
			if hard[i] > 0 && lt.spent[i]+lt.held+r.EstimateMicros > allow {
				return nil, m.reject(r.Team, &LimitError{
					Limit: LimitFailOpenAllowance, Retryable: true, RetryAfter: failOpenRetryAfter,
					Message: fmt.Sprintf("the budget store is unreachable and team %s has used its fail-open allowance of %s per window on this gateway pod; retry shortly",
						r.Team, usd(allow)),
				})
			}
		}
	}
	lt.held += r.EstimateMicros
	m.met.admissions.WithLabelValues(r.Team, "fail_open").Inc()
	m.met.failOpenAdmits.WithLabelValues(r.Team).Inc()
	minute, _ := ledger.MinuteOf(now)
	return &Reservation{ID: r.RequestID, Team: r.Team, HeldMicros: r.EstimateMicros, HeldTokens: r.EstimateTokens,
		FailOpen: true, AdmittedAt: now, budget: b, minute: minute}, nil
}

// localSettle releases a fail-open hold and charges the spend to the local allowance; the
// caller holds mu. The store is charged separately (directly or by replay).
func (m *Manager) localSettle(res *Reservation, actual int64, now time.Time) {
	lt := m.localTeam(res.Team, now)
	lt.held -= res.HeldMicros
	for i := range lt.spent {
		lt.spent[i] += actual
	}
}

// storeFailed counts a failed store call and asks the loop to probe the store now.
func (m *Manager) storeFailed(op string, err error) {
	m.met.storeErrors.WithLabelValues(op).Inc()
	m.log.Debug("budget store call failed", "op", op, "error", err)
	select {
	case m.probe <- struct{}{}:
	default:
	}
}

// enqueue keeps a settlement for replay, dropping the oldest past MaxPendingSettles.
func (m *Manager) enqueue(a *settleArgs) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) >= m.o.MaxPendingSettles {
		m.met.settles.WithLabelValues("dropped").Inc()
		m.log.Error("budget settlement queue full: dropping the oldest settlement", "team", m.pending[0].team,
			"reservation", m.pending[0].id, "spend", usd(m.pending[0].actual))
		m.pending = m.pending[1:]
	}
	m.pending = append(m.pending, a)
	m.met.settles.WithLabelValues("queued").Inc()
	m.met.pendingSettles.Set(float64(len(m.pending)))
}
