// Package metrics holds the gateway's Prometheus registry and the collectors of the proxy core.
//
// Names follow the OpenTelemetry GenAI semantic conventions where one exists
// (gen_ai_client_token_usage, gen_ai_server_request_duration, gen_ai_server_time_to_first_token);
// the rest are llm_gateway_*. Labels are bounded: team, route, backend, model, status or class;
// never request ids, keys or free text.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Circuit states as exported by llm_gateway_circuit_state.
const (
	CircuitClosed   = 0
	CircuitOpen     = 1
	CircuitHalfOpen = 2
)

// Metrics is the gateway's registry and its core collectors. Other packages (budget, record)
// register their own collectors into Registry.
type Metrics struct {
	Registry *prometheus.Registry

	// Requests counts finished client requests by team, route, model, op and HTTP status.
	Requests *prometheus.CounterVec
	// RequestDuration is gen_ai_server_request_duration (seconds), by team, route, model, op, error class.
	RequestDuration *prometheus.HistogramVec
	// TimeToFirstToken is gen_ai_server_time_to_first_token (seconds) for streams.
	TimeToFirstToken *prometheus.HistogramVec
	// TokenUsage is gen_ai_client_token_usage by team, model and gen_ai_token_type (input, output).
	TokenUsage *prometheus.HistogramVec
	// Attempts counts upstream attempts by backend and outcome (ok, a failover class, client_error,
	// canceled, skipped_circuit_open, skipped_unsupported, skipped_sticky).
	Attempts *prometheus.CounterVec
	// Failovers counts moves from one backend to the next by route and class.
	Failovers *prometheus.CounterVec
	// CircuitState is 0 closed, 1 open, 2 half-open, per backend.
	CircuitState *prometheus.GaugeVec
	// BackendInFlight is the number of in-flight upstream requests per backend.
	BackendInFlight *prometheus.GaugeVec
	// OpenStreams is the number of open client streams per team.
	OpenStreams *prometheus.GaugeVec
	// StreamsKilled counts streams ended by the gateway (drain, suspended, runaway) by reason.
	StreamsKilled *prometheus.CounterVec
	// SnapshotInfo is 1 for the version being served.
	SnapshotInfo *prometheus.GaugeVec
	// SnapshotApplied and SnapshotRejected count snapshot swaps and rejected snapshots.
	SnapshotApplied  prometheus.Counter
	SnapshotRejected prometheus.Counter
	// ConfigSyncErrors counts failed polls of the operator by reason.
	ConfigSyncErrors *prometheus.CounterVec
	// Unpriced counts calls to models without a price, by model.
	Unpriced *prometheus.CounterVec
	// CostMicros is the spend computed by the gateway, in micro-dollars, by team and model.
	CostMicros *prometheus.CounterVec
	// Ingress counts requests by team and path (gateway, legacy).
	Ingress *prometheus.CounterVec

	// ConnectionsOpen is the number of open client connections on the proxy listener;
	// ConnectionsLimit its cap (--max-connections, 0: none); ConnectionsRefused counts the
	// connections answered 503 and closed because the cap was reached.
	ConnectionsOpen    prometheus.Gauge
	ConnectionsLimit   prometheus.Gauge
	ConnectionsRefused prometheus.Counter
	// BodyBytesInFlight is the request-body bytes held by calls in progress;
	// BodyBytesLimit its bound (--max-inflight-body-bytes).
	BodyBytesInFlight prometheus.Gauge
	BodyBytesLimit    prometheus.Gauge
	// RequestsShed counts requests refused because the pod is at a limit, by reason
	// (body_bytes: the in-flight body bound).
	RequestsShed *prometheus.CounterVec
	// ClientTimeouts counts clients cut off for being too slow, by kind (body_read: the
	// request body did not arrive within --body-read-timeout; write: the client did not
	// take a response write within the idle timeout).
	ClientTimeouts *prometheus.CounterVec
}

// New creates a registry with the Go and process collectors and the core collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	durations := []float64{.05, .1, .25, .5, 1, 2, 4, 8, 16, 32, 64, 128, 256}
	tokens := []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304}
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_requests_total", Help: "Client requests handled by the gateway, by final HTTP status.",
		}, []string{"team", "route", "model", "op", "status"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_server_request_duration_seconds", Help: "GenAI request duration as seen by the gateway.",
			Buckets: durations,
		}, []string{"team", "route", "model", "op", "error_type"}),
		TimeToFirstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_server_time_to_first_token_seconds", Help: "Time to the first streamed event sent to the client.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 60},
		}, []string{"team", "route", "model", "op"}),
		TokenUsage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_client_token_usage", Help: "Tokens used per call, by token type (input includes cache read and write).",
			Buckets: tokens,
		}, []string{"team", "model", "gen_ai_token_type"}),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_upstream_attempts_total", Help: "Upstream attempts by backend and outcome.",
		}, []string{"backend", "outcome"}),
		Failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_failovers_total", Help: "Failovers from one backend to the next, by route and failure class.",
		}, []string{"route", "class"}),
		CircuitState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llm_gateway_circuit_state", Help: "Circuit breaker state per backend: 0 closed, 1 open, 2 half-open.",
		}, []string{"backend"}),
		BackendInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llm_gateway_backend_in_flight", Help: "In-flight upstream requests per backend.",
		}, []string{"backend"}),
		OpenStreams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llm_gateway_open_streams", Help: "Open client streams per team.",
		}, []string{"team"}),
		StreamsKilled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_streams_killed_total", Help: "Streams ended by the gateway with a terminal error event, by reason.",
		}, []string{"reason"}),
		SnapshotInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llm_gateway_snapshot_info", Help: "1 for the snapshot version this pod serves.",
		}, []string{"version"}),
		SnapshotApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llm_gateway_snapshots_applied_total", Help: "Snapshots applied.",
		}),
		SnapshotRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llm_gateway_snapshots_rejected_total", Help: "Snapshots that failed to decode, validate or build; the previous one kept serving.",
		}),
		ConfigSyncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_config_sync_errors_total", Help: "Failed snapshot polls of the operator, by reason.",
		}, []string{"reason"}),
		Unpriced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_unpriced_calls_total", Help: "Calls to models with no known price.",
		}, []string{"team", "model"}),
		CostMicros: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_cost_micro_usd_total", Help: "Spend computed by the gateway, in micro-dollars.",
		}, []string{"team", "model"}),
		Ingress: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_ingress_total", Help: "Requests by team and ingress path (gateway or legacy).",
		}, []string{"team", "path"}),
		ConnectionsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_connections_open", Help: "Open client connections on the proxy listener.",
		}),
		ConnectionsLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_connections_limit", Help: "Most client connections the proxy listener holds open (0: no limit).",
		}),
		ConnectionsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llm_gateway_connections_refused_total", Help: "Client connections answered 503 and closed because the pod was at its connection limit.",
		}),
		BodyBytesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_request_body_bytes_in_flight", Help: "Request-body bytes held in memory by calls in progress.",
		}),
		BodyBytesLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llm_gateway_request_body_bytes_limit", Help: "Bound on the request-body bytes held in memory across the pod.",
		}),
		RequestsShed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_requests_shed_total", Help: "Requests refused with 503 because the pod was at a limit, by reason.",
		}, []string{"reason"}),
		ClientTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_gateway_client_timeouts_total", Help: "Clients cut off for being too slow, by kind (body_read, write).",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.Requests, m.RequestDuration, m.TimeToFirstToken, m.TokenUsage, m.Attempts, m.Failovers,
		m.CircuitState, m.BackendInFlight, m.OpenStreams, m.StreamsKilled, m.SnapshotInfo, m.SnapshotApplied,
		m.SnapshotRejected, m.ConfigSyncErrors, m.Unpriced, m.CostMicros, m.Ingress,
		m.ConnectionsOpen, m.ConnectionsLimit, m.ConnectionsRefused, m.BodyBytesInFlight, m.BodyBytesLimit,
		m.RequestsShed, m.ClientTimeouts)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// SetSnapshotVersion makes version the only one reported by llm_gateway_snapshot_info.
func (m *Metrics) SetSnapshotVersion(version string) {
	m.SnapshotInfo.Reset()
	m.SnapshotInfo.WithLabelValues(version).Set(1)
}
