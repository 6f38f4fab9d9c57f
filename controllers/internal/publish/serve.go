/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package publish

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// SweepInterval is how often Serve drops pods that stopped polling.
const SweepInterval = 5 * time.Second

// Serve serves the handler over TLS (Options.TLS) on l until ctx ends, sweeping silent pods.
// On shutdown held requests get 503 so that pods move to another operator replica at once.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if s.opts.TLS == nil {
		return errors.New("snapshot server: no TLS configuration: the snapshot carries provider credentials and is served over TLS only")
	}
	srv := &http.Server{
		Handler:   s.Handler(),
		TLSConfig: s.opts.TLS.Clone(),
		// Handshake failures (a client without the CA, a scanner) are not the operator's errors:
		// they go to the debug level.
		ErrorLog:          log.New(logWriter{s.opts.Log.V(1)}, "", 0),
		ReadHeaderTimeout: 10 * time.Second,
		// Long polls hold a request for up to MaxWait seconds.
		WriteTimeout: (MaxWait + 30) * time.Second,
		IdleTimeout:  (MaxWait + 30) * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(l, "", "") }()
	tick := time.NewTicker(SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.Sweep()
		case err := <-errc:
			return fmt.Errorf("snapshot server: %w", err)
		case <-ctx.Done():
			s.Close()
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("snapshot server shutdown: %w", err)
			}
			if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("snapshot server: %w", err)
			}
			return nil
		}
	}
}

// ListenAndServe listens on addr and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("snapshot server: listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, l)
}

// logWriter turns the http.Server's error log lines into debug-level log entries.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info("snapshot server", "message", strings.TrimSpace(string(p)))
	return len(p), nil
}
