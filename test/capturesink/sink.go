// Package capturesink is a local stand-in for PostHog capture: it serves POST /batch/ (and
// the single-event POST /i/v0/e/) in posthog-go's wire format, validates every received
// event against the $ai_generation schema (Validate), records events by uuid counting
// duplicate deliveries, and can be switched at runtime to answer 503 or 429, or to go down
// (close its listener) and come back on the same address.
package capturesink

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
)

// Mode is how the sink answers.
type Mode int

const (
	// Accept answers 200 {"status":1} and records the events.
	Accept Mode = iota
	// Unavailable answers 503 without recording anything.
	Unavailable
	// RateLimited answers 429 with Retry-After without recording anything.
	RateLimited
)

// Received is one distinct event (by uuid).
type Received struct {
	UUID   string
	APIKey string
	// Raw is the event as first received; Props its decoded properties.
	Raw   json.RawMessage
	Event map[string]any
	Props map[string]any
	// Deliveries counts how many times capture accepted this uuid (>1: duplicates).
	Deliveries int
	// Problems are the schema violations Validate found in the first delivery.
	Problems []string
}

// Sink is the capture stand-in. The zero value is not usable; call New.
type Sink struct {
	mu         sync.Mutex
	mode       Mode
	retryAfter int
	// RejectInvalid answers 400 to a batch holding an event that fails Validate (as a
	// stricter capture would); otherwise such events are accepted and reported.
	rejectInvalid bool
	events        map[string]*Received
	order         []string
	duplicates    int
	batches       int
	refused       int
	badRequests   int

	addr string
	ln   net.Listener
	srv  *http.Server
}

// New returns a sink in Accept mode; serve it with Start or through httptest.NewServer(s).
func New() *Sink {
	return &Sink{events: map[string]*Received{}, retryAfter: 1}
}

// Start listens on addr ("" or "127.0.0.1:0" for a free loopback port).
func (s *Sink) Start(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("capture sink listen %s: %w", addr, err)
	}
	s.mu.Lock()
	s.addr, s.ln = ln.Addr().String(), ln
	s.srv = &http.Server{Handler: s}
	srv := s.srv
	s.mu.Unlock()
	go srv.Serve(ln)
	return nil
}

// URL is the sink's base URL (the capture endpoint to configure).
func (s *Sink) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr
}

// Down closes the listener and every open connection: clients get connection errors.
func (s *Sink) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Up listens again on the same address after Down.
func (s *Sink) Up() error {
	s.mu.Lock()
	addr := s.addr
	s.mu.Unlock()
	return s.Start(addr)
}

// Close stops the sink.
func (s *Sink) Close() { s.Down() }

// SetMode switches how the sink answers.
func (s *Sink) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// SetRetryAfter sets the Retry-After seconds of RateLimited answers.
func (s *Sink) SetRetryAfter(seconds int) {
	s.mu.Lock()
	s.retryAfter = seconds
	s.mu.Unlock()
}

// SetRejectInvalid makes the sink answer 400 to batches holding an invalid event.
func (s *Sink) SetRejectInvalid(v bool) {
	s.mu.Lock()
	s.rejectInvalid = v
	s.mu.Unlock()
}

type batchBody struct {
	APIKey              string            `json:"api_key"`
	HistoricalMigration bool              `json:"historical_migration"`
	Batch               []json.RawMessage `json:"batch"`
	SentAt              string            `json:"sent_at"`
}

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || (r.URL.Path != "/batch/" && r.URL.Path != "/batch" && r.URL.Path != "/i/v0/e/") {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	s.mu.Lock()
	mode, retryAfter := s.mode, s.retryAfter
	s.mu.Unlock()
	switch mode {
	case Unavailable:
		s.count(func() { s.refused++ })
		http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
		return
	case RateLimited:
		s.count(func() { s.refused++ })
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		http.Error(w, `{"error":"rate limited"}`, http.StatusTooManyRequests)
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.badRequest(w, err)
		return
	}
	var b batchBody
	if r.URL.Path == "/i/v0/e/" {
		var single map[string]json.RawMessage
		if err := json.Unmarshal(body, &single); err != nil {
			s.badRequest(w, err)
			return
		}
		json.Unmarshal(single["api_key"], &b.APIKey)
		b.Batch = []json.RawMessage{body}
	} else if err := json.Unmarshal(body, &b); err != nil {
		s.badRequest(w, err)
		return
	}
	if b.APIKey == "" {
		s.badRequest(w, errors.New("api_key is required"))
		return
	}
	if b.HistoricalMigration {
		s.badRequest(w, errors.New("live gateway traffic must not be a historical migration"))
		return
	}
	type item struct {
		raw      json.RawMessage
		ev       map[string]any
		id       string
		problems []string
	}
	items := make([]item, 0, len(b.Batch))
	invalid := false
	for _, raw := range b.Batch {
		it := item{raw: raw, problems: Validate(raw)}
		json.Unmarshal(raw, &it.ev)
		it.id, _ = it.ev["uuid"].(string)
		if it.id == "" {
			it.problems = append(it.problems, "no uuid: capture could not dedup a redelivery")
		}
		invalid = invalid || len(it.problems) > 0
		items = append(items, it)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if invalid && s.rejectInvalid {
		s.badRequests++
		http.Error(w, `{"error":"invalid event in batch"}`, http.StatusBadRequest)
		return
	}
	s.batches++
	for _, it := range items {
		if prev, ok := s.events[it.id]; ok {
			prev.Deliveries++
			s.duplicates++
			continue
		}
		props, _ := it.ev["properties"].(map[string]any)
		s.events[it.id] = &Received{
			UUID: it.id, APIKey: b.APIKey, Raw: it.raw, Event: it.ev, Props: props,
			Deliveries: 1, Problems: it.problems,
		}
		s.order = append(s.order, it.id)
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"status":1}`)
}

func (s *Sink) count(f func()) {
	s.mu.Lock()
	f()
	s.mu.Unlock()
}

func (s *Sink) badRequest(w http.ResponseWriter, err error) {
	s.count(func() { s.badRequests++ })
	http.Error(w, fmt.Sprintf(`{"error":%q}`, err.Error()), http.StatusBadRequest)
}

func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" || r.URL.Query().Get("compression") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("gunzip body: %w", err)
		}
		defer zr.Close()
		rd = zr
	}
	return io.ReadAll(io.LimitReader(rd, 64<<20))
}

// Events returns the distinct events received, in order of first arrival.
func (s *Sink) Events() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.events[id])
	}
	return out
}

// Event returns the event with uuid id.
func (s *Sink) Event(id string) (Received, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.events[id]
	if !ok {
		return Received{}, false
	}
	return *e, true
}

// Stats summarizes what the sink saw.
type Stats struct {
	// Unique is the number of distinct uuids accepted; Duplicates the deliveries beyond the
	// first of each uuid.
	Unique     int
	Duplicates int
	// Batches accepted; Refused requests answered 503/429; BadRequests answered 400.
	Batches     int
	Refused     int
	BadRequests int
	// Invalid is the number of distinct events with schema problems.
	Invalid int
}

func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Unique: len(s.events), Duplicates: s.duplicates, Batches: s.batches, Refused: s.refused, BadRequests: s.badRequests}
	for _, e := range s.events {
		if len(e.Problems) > 0 {
			st.Invalid++
		}
	}
	return st
}

// Problems lists the schema violations of every received event, "uuid: problem", sorted.
func (s *Sink) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, e := range s.events {
		for _, p := range e.Problems {
			out = append(out, id+": "+p)
		}
	}
	sort.Strings(out)
	return out
}

// DuplicateUUIDs lists the uuids delivered more than once with their delivery counts.
func (s *Sink) DuplicateUUIDs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for id, e := range s.events {
		if e.Deliveries > 1 {
			out[id] = e.Deliveries
		}
	}
	return out
}
