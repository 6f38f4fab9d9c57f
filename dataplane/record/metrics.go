package record

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/posthog/llm-gateway/dataplane/record/ship"
)

// metrics of the recording pipeline: the request path's and the outbox's here, the
// shipper's in ship (registered together). Labels are bounded (fixed outcome names).
type metrics struct {
	events      *prometheus.CounterVec // outcome: outboxed|queued|dropped_outbox_full|dropped_queue_full
	outboxUsed  prometheus.Gauge
	outboxLimit prometheus.Gauge
	outboxFill  prometheus.Gauge
	outboxEntry prometheus.Gauge
	queueLen    prometheus.Gauge
	ship        *ship.Metrics // shipped, batches, dead letters, in flight, outbox errors
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_record_events_total",
			Help: "Events recorded by outcome: outboxed (durable), queued (in memory while the outbox is unavailable), dropped_outbox_full, dropped_queue_full.",
		}, []string{"outcome"}),
		outboxUsed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_record_outbox_used",
			Help: "Outbox size in its unit (bytes for the file outbox, entries for the Redis outbox).",
		}),
		outboxLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_record_outbox_limit",
			Help: "Outbox size limit in its unit; at the limit new events are dropped.",
		}),
		outboxFill: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_record_outbox_fill_ratio",
			Help: "Outbox used / limit. Alert above 0.8.",
		}),
		outboxEntry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_record_outbox_entries",
			Help: "Unacked events in the outbox.",
		}),
		queueLen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_record_memory_queue_length",
			Help: "Calls waiting in memory for the outbox to accept them.",
		}),
		ship: ship.NewMetrics(),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.outboxUsed, m.outboxLimit, m.outboxFill, m.outboxEntry, m.queueLen)
		reg.MustRegister(m.ship.Collectors()...)
	}
	return m
}
