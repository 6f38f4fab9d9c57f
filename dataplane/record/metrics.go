package record

import "github.com/prometheus/client_golang/prometheus"

// metrics of the recording pipeline. Labels are bounded (fixed outcome names).
type metrics struct {
	events       *prometheus.CounterVec // outcome: outboxed|queued|dropped_outbox_full|dropped_queue_full
	shipped      *prometheus.CounterVec // sink: capture|file
	batches      *prometheus.CounterVec // result: ok|retry|rejected
	deadLetter   prometheus.Counter
	outboxUsed   prometheus.Gauge
	outboxLimit  prometheus.Gauge
	outboxFill   prometheus.Gauge
	outboxEntry  prometheus.Gauge
	queueLen     prometheus.Gauge
	inflight     prometheus.Gauge
	outboxErrors *prometheus.CounterVec // op: append|read|ack|touch|stats
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_record_events_total",
			Help: "Events recorded by outcome: outboxed (durable), queued (in memory while the outbox is unavailable), dropped_outbox_full, dropped_queue_full.",
		}, []string{"outcome"}),
		shipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_record_shipped_events_total",
			Help: "Events accepted by their destination (capture, or the local events file).",
		}, []string{"sink"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_record_batches_total",
			Help: "Batch sends by result: ok, retry (5xx/429/network, retried with backoff), rejected (4xx, bisected).",
		}, []string{"result"}),
		deadLetter: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llm_gateway_record_dead_letter_events_total",
			Help: "Events capture rejected on their own (4xx for a single-event batch); logged and dropped.",
		}),
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
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_record_inflight_events",
			Help: "Events read from the outbox and not yet accepted by capture.",
		}),
		outboxErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_record_outbox_errors_total",
			Help: "Outbox operation failures by operation.",
		}, []string{"op"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.shipped, m.batches, m.deadLetter, m.outboxUsed, m.outboxLimit,
			m.outboxFill, m.outboxEntry, m.queueLen, m.inflight, m.outboxErrors)
	}
	return m
}
