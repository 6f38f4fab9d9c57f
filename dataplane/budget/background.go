package budget

import (
	"context"
	"time"
)

// loop runs the background work until Close.
func (m *Manager) loop() {
	defer close(m.done)
	poll := time.NewTicker(m.o.PollInterval)
	defer poll.Stop()
	refresh := time.NewTicker(m.o.RefreshInterval)
	defer refresh.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-m.probe:
			m.checkStore()
		case <-poll.C:
			if !m.healthy.Load() {
				m.checkStore()
			}
			m.replay()
			m.pollTrips()
		case <-refresh.C:
			m.refreshHolds()
		}
	}
}

func (m *Manager) withTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(m.ctx, m.o.StoreTimeout)
}

// probeTimeoutFactor: the probe that decides to skip the store altogether waits longer than
// one call does, so that a slow moment does not take the store out of the path.
const probeTimeoutFactor = 5

// checkStore pings the store, flips the health flag on a change and replays queued
// settlements while the store is reachable.
func (m *Manager) checkStore() {
	ctx, cancel := context.WithTimeout(m.ctx, probeTimeoutFactor*m.o.StoreTimeout)
	err := m.store.ping(ctx)
	cancel()
	if err != nil {
		m.met.storeErrors.WithLabelValues("ping").Inc()
		if m.healthy.Swap(false) {
			m.met.storeUp.Set(0)
			m.log.Error("budget store unreachable: calls follow their budget's onStoreUnavailable until it is back", "error", err)
		}
		return
	}
	if !m.healthy.Swap(true) {
		m.met.storeUp.Set(1)
		m.mu.Lock()
		clear(m.outage)
		n := len(m.pending)
		m.mu.Unlock()
		m.log.Info("budget store reachable again: shared counting resumes", "pending_settles", n)
	}
	m.replay()
}

// replay charges queued settlements to the store, oldest first, until one fails. Each keeps
// its reservation id, so the settlement marker makes a settlement that had in fact reached the
// store before its error a no-op. Spend goes to the windows of its original settlement; the
// runaway breaker is not fed with old spend.
func (m *Manager) replay() {
	for m.healthy.Load() {
		m.mu.Lock()
		if len(m.pending) == 0 {
			m.mu.Unlock()
			return
		}
		a := m.pending[0]
		m.pending = m.pending[1:]
		m.met.pendingSettles.Set(float64(len(m.pending)))
		m.mu.Unlock()
		r := *a
		r.runaway = nil
		ctx, cancel := m.withTimeout()
		out, err := m.store.settle(ctx, &r)
		cancel()
		if err != nil {
			m.met.storeErrors.WithLabelValues("replay").Inc()
			m.mu.Lock()
			m.pending = append([]*settleArgs{a}, m.pending...)
			m.met.pendingSettles.Set(float64(len(m.pending)))
			m.mu.Unlock()
			m.storeFailed("replay", err)
			return
		}
		m.settled(&r, out, true, "replayed")
	}
}

// refreshHolds pushes the expiry of the open calls' holds forward in one pipelined call.
// Holds older than MaxReservationAge are let go (the caller never settled them).
func (m *Manager) refreshHolds() {
	if !m.healthy.Load() {
		return
	}
	now := m.clock.Now()
	m.mu.Lock()
	holds := make([]holdRef, 0, len(m.open))
	for id, r := range m.open {
		if now.Sub(r.AdmittedAt) > m.o.MaxReservationAge {
			delete(m.open, id)
			m.log.Error("reservation never settled: letting its hold expire", "team", r.Team, "reservation", id,
				"admitted_at", r.AdmittedAt)
			continue
		}
		if !r.FailOpen {
			holds = append(holds, holdRef{team: r.Team, id: id})
		}
	}
	m.mu.Unlock()
	ctx, cancel := m.withTimeout()
	defer cancel()
	if err := m.store.refresh(ctx, holds, now.Add(m.o.ReservationTTL), 2*m.o.ReservationTTL); err != nil {
		m.storeFailed("refresh", err)
	}
}

// pollTrips reads the runaway trips of the teams with open calls (and of those known to be
// tripped), so that Suspended reports a trip made on another pod.
func (m *Manager) pollTrips() {
	if !m.healthy.Load() {
		return
	}
	seen := map[string]bool{}
	var teams []string
	m.mu.Lock()
	for _, r := range m.open {
		if !seen[r.Team] {
			seen[r.Team] = true
			teams = append(teams, r.Team)
		}
	}
	m.mu.Unlock()
	m.tripMu.RLock()
	for t := range m.trips {
		if !seen[t] {
			seen[t] = true
			teams = append(teams, t)
		}
	}
	m.tripMu.RUnlock()
	if len(teams) == 0 {
		return
	}
	ctx, cancel := m.withTimeout()
	got, err := m.store.trips(ctx, teams)
	cancel()
	if err != nil {
		m.storeFailed("trips", err)
		return
	}
	now := m.clock.Now()
	m.tripMu.Lock()
	defer m.tripMu.Unlock()
	for _, t := range teams {
		if tr, ok := got[t]; ok && tr.Until.After(now) {
			m.trips[t] = tr
		} else {
			delete(m.trips, t)
		}
	}
}
