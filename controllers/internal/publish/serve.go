/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package publish

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// SweepInterval is how often Serve drops pods that stopped polling.
const SweepInterval = 5 * time.Second

// Serve serves the handler on l until ctx ends, sweeping silent pods. On shutdown held
// requests get 503 so that pods move to another operator replica at once.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Long polls hold a request for up to MaxWait seconds.
		WriteTimeout: (MaxWait + 30) * time.Second,
		IdleTimeout:  (MaxWait + 30) * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
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
