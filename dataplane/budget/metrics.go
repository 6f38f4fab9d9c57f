package budget

import "github.com/prometheus/client_golang/prometheus"

// metrics are the budget collectors. Labels are bounded: team (from the snapshot), limit (the
// Limit names), result, window and op; never request ids.
type metrics struct {
	admissions      *prometheus.CounterVec // team, result: admitted, rejected, fail_open, unavailable
	rejections      *prometheus.CounterVec // team, limit
	storeErrors     *prometheus.CounterVec // op: admit, settle, refresh, trips, state, ping, replay
	storeUp         prometheus.Gauge
	failOpenAdmits  *prometheus.CounterVec // team
	settled         *prometheus.CounterVec // team: micro-dollars charged
	settles         *prometheus.CounterVec // result: charged, duplicate, expired_hold, queued, replayed, dropped
	expiries        *prometheus.CounterVec // team: holds that expired unsettled
	softCrossed     *prometheus.CounterVec // team, window
	runawayTrips    *prometheus.CounterVec // team
	pendingSettles  prometheus.Gauge
	admitDuration   prometheus.Histogram
	settleDuration  prometheus.Histogram
	outstandingHold prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	lat := []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25}
	m := &metrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_budget_admissions_total", Help: "Budget admissions by result (admitted, rejected, fail_open, unavailable).",
		}, []string{"team", "result"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_budget_rejections_total", Help: "Calls rejected by a budget or rate limit, by limit.",
		}, []string{"team", "limit"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_budget_store_errors_total", Help: "Failed calls to the budget store (Redis), by operation.",
		}, []string{"op"}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_budget_store_up", Help: "1 when this pod reaches the budget store, 0 while it runs on onStoreUnavailable.",
		}),
		failOpenAdmits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_budget_fail_open_admits_total", Help: "Calls admitted against the per-pod fail-open allowance while the store was unreachable.",
		}, []string{"team"}),
		settled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_budget_spend_settled_micro_usd_total", Help: "Spend charged to team budgets at settlement, in micro-dollars.",
		}, []string{"team"}),
		settles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_budget_settles_total", Help: "Settlements by result (charged, duplicate, expired_hold, queued, replayed, dropped).",
		}, []string{"result"}),
		expiries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_budget_reservation_expiries_total", Help: "Reservations that expired before settlement (purged at admission).",
		}, []string{"team"}),
		softCrossed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_budget_soft_limit_crossed_total", Help: "Soft spend limits reached, once per window.",
		}, []string{"team", "window"}),
		runawayTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_budget_runaway_trips_total", Help: "Runaway breaker trips (spend per minute above the threshold).",
		}, []string{"team"}),
		pendingSettles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_budget_pending_settles", Help: "Settlements queued on this pod until the store is reachable again.",
		}),
		admitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "llm_gateway_budget_admit_duration_seconds", Help: "Budget admission latency (store round trip included).", Buckets: lat,
		}),
		settleDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "llm_gateway_budget_settle_duration_seconds", Help: "Budget settlement latency (store round trip included).", Buckets: lat,
		}),
		outstandingHold: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_budget_outstanding_reservations", Help: "Reservations this pod holds for calls in flight.",
		}),
	}
	m.storeUp.Set(1)
	if reg != nil {
		reg.MustRegister(m.admissions, m.rejections, m.storeErrors, m.storeUp, m.failOpenAdmits, m.settled, m.settles,
			m.expiries, m.softCrossed, m.runawayTrips, m.pendingSettles, m.admitDuration, m.settleDuration, m.outstandingHold)
	}
	return m
}
