package record

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/dataplane/record/outbox"
	"github.com/posthog/llm-gateway/dataplane/record/ship"
)

// Config is the recording pipeline's configuration, one field per gateway flag.
type Config struct {
	// CaptureEndpoint is the PostHog capture host (--capture-endpoint, e.g.
	// https://us.i.posthog.com). Empty (and no per-team host): events go to EventsFile.
	CaptureEndpoint string
	// CaptureAPIKey is the project API key for teams without their own (--capture-api-key).
	CaptureAPIKey string
	// EventsFile receives events that have no capture destination, one JSON event per line
	// exactly as it would be sent (--events-file; default <StateDir>/events.jsonl).
	EventsFile string
	// StateDir holds the file outbox (<StateDir>/outbox) when Redis is not used (--state-dir).
	StateDir string
	// Redis, when set, holds the outbox as a stream shared by every pod (from --redis-url).
	Redis redis.UniversalClient
	// Stream and Group name the Redis stream and consumer group (defaults
	// "llm-gateway:events" and "shipper"); PodName is this pod's consumer name (--pod-name).
	Stream  string
	Group   string
	PodName string
	// OutboxMaxBytes bounds the file outbox (default 1 GiB); OutboxMaxEntries the Redis
	// stream (default 1,000,000).
	OutboxMaxBytes   int64
	OutboxMaxEntries int64
	// ClaimIdle is how long a dead pod's unacked entries wait before another pod claims them
	// (default 60s).
	ClaimIdle time.Duration
	// Gzip compresses batches to capture.
	Gzip bool
	// CaptureTimeout bounds one batch POST (default 30s).
	CaptureTimeout time.Duration
	// MaxBackoff caps the wait between retries of a batch capture refused (default 30s).
	MaxBackoff time.Duration
	// LibVersion is the gateway's version, sent as $lib_version.
	LibVersion string
}

// BindFlags registers the pipeline's flags on fs (env-var mapping is the caller's).
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.CaptureEndpoint, "capture-endpoint", c.CaptureEndpoint, "PostHog capture host events are sent to (POST {host}/batch/); empty: events go to --events-file")
	fs.StringVar(&c.CaptureAPIKey, "capture-api-key", c.CaptureAPIKey, "PostHog project API key for teams without their own")
	fs.StringVar(&c.EventsFile, "events-file", c.EventsFile, "JSONL file for events without a capture destination (default <state-dir>/events.jsonl)")
	fs.Int64Var(&c.OutboxMaxBytes, "outbox-max-bytes", c.OutboxMaxBytes, "size limit of the file outbox in bytes (default 1 GiB)")
	fs.Int64Var(&c.OutboxMaxEntries, "outbox-max-entries", c.OutboxMaxEntries, "size limit of the Redis outbox stream in entries (default 1000000)")
	fs.DurationVar(&c.ClaimIdle, "outbox-claim-idle", c.ClaimIdle, "how long a dead pod's unshipped events wait before another pod claims them (default 60s)")
	fs.BoolVar(&c.Gzip, "capture-gzip", c.Gzip, "gzip batches sent to capture")
	fs.DurationVar(&c.MaxBackoff, "capture-max-backoff", c.MaxBackoff, "longest wait between retries of a batch capture refused (default 30s; a Retry-After may be longer)")
}

// EventsPath is the events file Open uses.
func (c *Config) EventsPath() string {
	if c.EventsFile != "" {
		return c.EventsFile
	}
	return filepath.Join(c.stateDir(), "events.jsonl")
}

func (c *Config) stateDir() string {
	if c.StateDir != "" {
		return c.StateDir
	}
	return ".llm-gateway"
}

// Open builds the outbox (Redis stream when cfg.Redis is set, else files under StateDir),
// the transports and a running Recorder.
func Open(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Recorder, error) {
	if log == nil {
		log = slog.Default()
	}
	var ob outbox.Outbox
	var err error
	if cfg.Redis != nil {
		if cfg.PodName == "" {
			return nil, errors.New("record: --pod-name is required with a Redis outbox (it names the stream consumer)")
		}
		stream, group := cfg.Stream, cfg.Group
		if stream == "" {
			stream = "llm-gateway:events"
		}
		if group == "" {
			group = "shipper"
		}
		ob, err = outbox.NewRedis(ctx, cfg.Redis, stream, group, cfg.PodName, outbox.RedisOptions{
			MaxEntries: cfg.OutboxMaxEntries, ClaimIdle: cfg.ClaimIdle, Logger: log,
		})
	} else {
		ob, err = outbox.NewFile(filepath.Join(cfg.stateDir(), "outbox"), outbox.FileOptions{MaxBytes: cfg.OutboxMaxBytes, Logger: log})
	}
	if err != nil {
		return nil, fmt.Errorf("open event outbox: %w", err)
	}
	local, err := ship.NewFileTransport(cfg.EventsPath())
	if err != nil {
		ob.Close()
		return nil, err
	}
	// Remote serves every destination with a host: the gateway's endpoint or a team's own.
	remote := ship.NewHTTPTransport(cfg.CaptureTimeout)
	remote.Gzip = cfg.Gzip
	so := ship.Options{Logger: log, MaxBackoff: cfg.MaxBackoff}
	if cfg.ClaimIdle > 0 {
		so.TouchInterval = cfg.ClaimIdle / 4
	}
	r, err := New(Options{
		Outbox: ob, Remote: remote, Local: local,
		DefaultDestination: event.Destination{Host: cfg.CaptureEndpoint, APIKey: cfg.CaptureAPIKey},
		LibVersion:         cfg.LibVersion,
		Shipper:            so,
		Logger:             log,
		Registerer:         reg,
	})
	if err != nil {
		ob.Close()
		local.Close()
		return nil, err
	}
	r.closers = append(r.closers, local.Close)
	log.Info("record: events pipeline ready", "outbox", outboxKind(cfg), "capture", cfg.CaptureEndpoint,
		"events_file", cfg.EventsPath())
	return r, nil
}

func outboxKind(cfg Config) string {
	if cfg.Redis != nil {
		return "redis"
	}
	return "file"
}
