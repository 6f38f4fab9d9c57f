package main

import (
	"flag"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/posthog/llm-gateway/dataplane/server"
)

// What one client may hold of the pod: the proxy server's timeouts and header bound, the
// connection cap, and the bound on request-body bytes in memory. See docs/gateway.md
// "Limits" for the defaults and their arithmetic.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultMaxHeaderBytes    = 64 << 10
	defaultMaxConnections    = 4096

	// inflightShare: without --max-inflight-body-bytes, request bodies may hold an eighth of
	// the memory limit (each body byte costs up to four bytes of live memory at its peak).
	inflightShare = 8
	// memLimitTenths: without GOMEMLIMIT, the Go runtime's soft limit is this fraction (in
	// tenths) of the memory limit, so garbage is collected before the kernel kills the pod.
	memLimitTenths = 9
)

// cgroupRoot is where the pod's cgroup is mounted.
const cgroupRoot = "/sys/fs/cgroup"

type limits struct {
	readHeaderTimeout    time.Duration
	bodyReadTimeout      time.Duration
	idleTimeout          time.Duration
	maxHeaderBytes       int
	maxConnections       int
	maxInflightBodyBytes int64
	memoryLimitBytes     int64
}

func (l *limits) bindFlags(fs *flag.FlagSet) {
	fs.DurationVar(&l.readHeaderTimeout, "read-header-timeout", defaultReadHeaderTimeout, "how long a client may take to send its request line and headers (a new connection that sends nothing is closed after it)")
	fs.DurationVar(&l.bodyReadTimeout, "body-read-timeout", server.DefaultBodyReadTimeout, "how long a client may take to send its whole request body (then 408 and the connection is closed)")
	fs.DurationVar(&l.idleTimeout, "idle-timeout", defaultIdleTimeout, "how long a keep-alive connection may sit idle between requests")
	fs.IntVar(&l.maxHeaderBytes, "max-header-bytes", defaultMaxHeaderBytes, "largest request line and headers (then 431)")
	fs.IntVar(&l.maxConnections, "max-connections", defaultMaxConnections, "most client connections held open on --listen; more are answered 503 and closed (0: no limit)")
	fs.Int64Var(&l.maxInflightBodyBytes, "max-inflight-body-bytes", 0, "most request-body bytes held in memory across the pod; a body that does not fit gets 503 before it is read (0: an eighth of the memory limit, else 128 MiB)")
	fs.Int64Var(&l.memoryLimitBytes, "memory-limit-bytes", 0, "the pod's memory limit (0: read from the cgroup); sizes --max-inflight-body-bytes and, when GOMEMLIMIT is unset, the Go runtime's soft memory limit (90%)")
}

// resolve fills in what depends on the memory limit: the in-flight body bound, the Go
// runtime's soft limit, and maxBody, which must not exceed the body bound (a bigger body
// could never be admitted).
func (l *limits) resolve(maxBody *int64, cgroup string, log *slog.Logger) {
	if l.memoryLimitBytes <= 0 {
		l.memoryLimitBytes, _ = cgroupMemoryLimit(cgroup)
	}
	if l.maxInflightBodyBytes <= 0 {
		l.maxInflightBodyBytes = server.DefaultMaxInflightBodyBytes
		if l.memoryLimitBytes > 0 {
			l.maxInflightBodyBytes = l.memoryLimitBytes / inflightShare
		}
	}
	if *maxBody > l.maxInflightBodyBytes {
		log.Warn("--max-body-bytes is above the in-flight body bound; lowering it", "max_body_bytes", *maxBody,
			"max_inflight_body_bytes", l.maxInflightBodyBytes)
		*maxBody = l.maxInflightBodyBytes
	}
	if l.memoryLimitBytes > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(l.memoryLimitBytes / 10 * memLimitTenths)
	}
	log.Info("limits", "memory_limit_bytes", l.memoryLimitBytes, "go_memory_limit_bytes", debug.SetMemoryLimit(-1),
		"max_inflight_body_bytes", l.maxInflightBodyBytes, "max_body_bytes", *maxBody, "max_connections", l.maxConnections)
}

// server returns the proxy's HTTP server. It has no ReadTimeout or WriteTimeout: both would
// cut streams that run longer. The body read deadline and the write deadline on every write
// to the client are set per request instead (server.Gateway.Handler, the relay).
func (l *limits) server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.readHeaderTimeout,
		IdleTimeout:       l.idleTimeout,
		MaxHeaderBytes:    l.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup under root: cgroup v2
// (memory.max) or v1 (memory/memory.limit_in_bytes). It reports false when there is none.
func cgroupMemoryLimit(root string) (int64, bool) {
	for _, p := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		// cgroup v1 says "no limit" with a number near the largest page-aligned int64.
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
