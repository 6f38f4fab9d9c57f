package ship

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the shipper's metrics. Labels are bounded (fixed names). The Recorder
// registers them with its own (record's metrics) and counts its outbox errors (append,
// stats) in OutboxErrors too.
type Metrics struct {
	Shipped    *prometheus.CounterVec // sink: capture|file
	Batches    *prometheus.CounterVec // result: ok|retry|rejected
	DeadLetter prometheus.Counter
	Inflight   prometheus.Gauge
	// OutboxErrors counts outbox operation failures by op: append|read|ack|touch|stats.
	OutboxErrors *prometheus.CounterVec
}

// NewMetrics returns the shipper's metrics, not registered (Collectors lists them).
func NewMetrics() *Metrics {
	return &Metrics{
		Shipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_record_shipped_events_total",
			Help: "Events accepted by their destination (capture, or the local events file).",
		}, []string{"sink"}),
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_record_batches_total",
			Help: "Batch sends by result: ok, retry (5xx/429/network, retried with backoff), rejected (4xx, bisected).",
		}, []string{"result"}),
		DeadLetter: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llm_gateway_record_dead_letter_events_total",
			Help: "Events capture rejected on their own (4xx for a single-event batch); logged and dropped.",
		}),
		Inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_record_inflight_events",
			Help: "Events read from the outbox and not yet accepted by capture.",
		}),
		OutboxErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_record_outbox_errors_total",
			Help: "Outbox operation failures by operation.",
		}, []string{"op"}),
	}
}

// Collectors are the metrics, to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Shipped, m.Batches, m.DeadLetter, m.Inflight, m.OutboxErrors}
}
