package server

import (
	"context"
	"errors"
	"sync"
)

// Reasons the gateway ends an open stream itself. Each becomes the cause of the upstream
// request's context; the relay then writes a terminal error event in the client's protocol.
var (
	ErrDraining  = errors.New("the gateway is shutting down and the stream exceeded the drain timeout")
	ErrSuspended = errors.New("the team's budget has been suspended")
)

type openStream struct {
	team, requestID string
	kill            context.CancelCauseFunc
}

// StreamRegistry tracks every open client stream so that drain and the kill switch can end
// them with a proper terminal event.
type StreamRegistry struct {
	mu      sync.Mutex
	next    uint64
	streams map[uint64]*openStream
	perTeam map[string]int
	empty   chan struct{} // closed when the registry becomes empty; nil while empty
	onCount func(team string, n int)
}

// NewStreamRegistry returns an empty registry; onCount (may be nil) gets the new per-team count.
func NewStreamRegistry(onCount func(team string, n int)) *StreamRegistry {
	return &StreamRegistry{streams: map[uint64]*openStream{}, perTeam: map[string]int{}, onCount: onCount}
}

// Add registers a stream; kill ends it with a cause. The returned func unregisters it.
func (r *StreamRegistry) Add(team, requestID string, kill context.CancelCauseFunc) (remove func()) {
	r.mu.Lock()
	r.next++
	id := r.next
	r.streams[id] = &openStream{team: team, requestID: requestID, kill: kill}
	r.perTeam[team]++
	n := r.perTeam[team]
	if r.empty == nil {
		r.empty = make(chan struct{})
	}
	r.mu.Unlock()
	if r.onCount != nil {
		r.onCount(team, n)
	}
	return func() { r.remove(id) }
}

func (r *StreamRegistry) remove(id uint64) {
	r.mu.Lock()
	s, ok := r.streams[id]
	if !ok {
		r.mu.Unlock()
		return
	}
	delete(r.streams, id)
	r.perTeam[s.team]--
	n := r.perTeam[s.team]
	if n == 0 {
		delete(r.perTeam, s.team)
	}
	if len(r.streams) == 0 && r.empty != nil {
		close(r.empty)
		r.empty = nil
	}
	r.mu.Unlock()
	if r.onCount != nil {
		r.onCount(s.team, n)
	}
}

// KillTeam ends every open stream of team with cause and returns how many it ended.
func (r *StreamRegistry) KillTeam(team string, cause error) int {
	return r.kill(func(s *openStream) bool { return s.team == team }, cause)
}

// KillAll ends every open stream with cause.
func (r *StreamRegistry) KillAll(cause error) int {
	return r.kill(func(*openStream) bool { return true }, cause)
}

func (r *StreamRegistry) kill(match func(*openStream) bool, cause error) int {
	r.mu.Lock()
	var kills []context.CancelCauseFunc
	for _, s := range r.streams {
		if match(s) {
			kills = append(kills, s.kill)
		}
	}
	r.mu.Unlock()
	for _, k := range kills {
		k(cause)
	}
	return len(kills)
}

// Counts returns the number of open streams per team.
func (r *StreamRegistry) Counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.perTeam))
	for t, n := range r.perTeam {
		out[t] = n
	}
	return out
}

// Teams returns the teams that have open streams.
func (r *StreamRegistry) Teams() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.perTeam))
	for t := range r.perTeam {
		out = append(out, t)
	}
	return out
}

// Len returns the number of open streams.
func (r *StreamRegistry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.streams)
}

// Wait blocks until no stream is open or ctx ends.
func (r *StreamRegistry) Wait(ctx context.Context) error {
	for {
		r.mu.Lock()
		ch := r.empty
		r.mu.Unlock()
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
