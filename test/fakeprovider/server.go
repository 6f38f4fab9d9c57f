package fakeprovider

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// maxBody is the largest request body read (Anthropic's 32 MB limit); larger is 413.
const maxBody = 32 << 20

// Server is the fake provider. It is an http.Handler, safe for concurrent use.
type Server struct {
	cfg    Config
	now    func() time.Time
	log    *slog.Logger
	mux    *http.ServeMux
	signer *v4.Signer

	// defaults holds the default scenario per provider (Provider.index order).
	defaults [4]atomic.Pointer[armed]
	named    atomic.Pointer[map[string]Scenario]

	reqs   *requestLog
	counts sync.Map // path -> *atomic.Int64
	seq    atomic.Uint64

	done      chan struct{}
	closeOnce sync.Once
}

// New returns a server for cfg. Invalid scenarios in cfg are ignored with a log line.
func New(cfg Config) *Server {
	s := &Server{
		cfg:    cfg,
		now:    cfg.Now,
		log:    cfg.Logger,
		signer: v4.NewSigner(),
		done:   make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if len(s.cfg.Models) == 0 {
		s.cfg.Models = []string{"gpt-4o", "gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"}
	}
	capacity := cfg.RecordRequests
	if capacity == 0 {
		capacity = DefaultRecordRequests
	}
	if capacity > 0 {
		s.reqs = &requestLog{buf: make([]Request, capacity)}
	}
	named := map[string]Scenario{}
	for name, sc := range cfg.Scenarios {
		if err := sc.Validate(); err != nil {
			s.log.Error("fakeprovider: ignoring invalid scenario", "name", name, "err", err)
			continue
		}
		sc.Name = name
		named[name] = sc
	}
	s.named.Store(&named)
	if cfg.Default != nil {
		if err := cfg.Default.Validate(); err != nil {
			s.log.Error("fakeprovider: ignoring invalid default scenario", "err", err)
		} else {
			s.SetDefault(cfg.Default)
		}
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	m := http.NewServeMux()
	// OpenAI
	m.HandleFunc("POST /v1/chat/completions", s.handle(OpenAI, OpChat, s.chat))
	m.HandleFunc("POST /v1/responses", s.handle(OpenAI, OpResponses, s.responses))
	openAIModels, anthropicModels := s.handle(OpenAI, OpModels, s.listModels), s.handle(Anthropic, OpModels, s.listModels)
	m.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Anthropic-Version") != "" || r.Header.Get("X-Api-Key") != "" {
			anthropicModels(w, r)
			return
		}
		openAIModels(w, r)
	})
	// Anthropic
	m.HandleFunc("POST /v1/messages", s.handle(Anthropic, OpMessages, s.messages))
	m.HandleFunc("POST /v1/messages/count_tokens", s.handle(Anthropic, OpCountTokens, s.countTokens))
	// Bedrock
	m.HandleFunc("POST /model/{modelId}/invoke", s.handle(Bedrock, OpInvoke, s.bedrockInvoke))
	m.HandleFunc("POST /model/{modelId}/invoke-with-response-stream", s.handle(Bedrock, OpInvokeStream, s.bedrockInvoke))
	m.HandleFunc("POST /model/{modelId}/count-tokens", s.handle(Bedrock, OpBedrockCountTokens, s.bedrockCountTokens))
	// Azure OpenAI
	m.HandleFunc("POST /openai/deployments/{deployment}/chat/completions", s.handle(Azure, OpChat, s.chat))
	m.HandleFunc("POST /openai/responses", s.handle(Azure, OpResponses, s.responses))
	m.HandleFunc("POST /openai/v1/chat/completions", s.handle(Azure, OpChat, s.chat))
	m.HandleFunc("POST /openai/v1/responses", s.handle(Azure, OpResponses, s.responses))
	// Admin
	m.HandleFunc("GET /_fake/health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.HandleFunc("GET /_fake/scenario", s.adminGetDefaults)
	m.HandleFunc("POST /_fake/scenario", s.adminSetDefault)
	m.HandleFunc("DELETE /_fake/scenario", s.adminClearDefault)
	m.HandleFunc("GET /_fake/scenarios", s.adminGetNamed)
	m.HandleFunc("POST /_fake/scenarios", s.adminSetNamed)
	m.HandleFunc("GET /_fake/requests", s.adminRequests)
	m.HandleFunc("DELETE /_fake/requests", s.adminReset)
	m.HandleFunc("GET /_fake/counts", s.adminCounts)
	s.mux = m
}

// ServeHTTP serves every provider route and the /_fake/ admin endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close releases handlers that are stalled or sleeping, so that an httptest.Server can shut
// down: a stalled response ends (unterminated), a delayed one completes at once. Call it
// before the http server's Close. The Server still answers afterwards, with no delays and no
// stalls.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.done) }) }

// SetDefault sets the scenario of every provider's requests that name none; nil clears it. A
// scenario with Times > 0 applies to the next Times requests of any provider, then lapses.
func (s *Server) SetDefault(sc *Scenario) {
	var a *armed
	if sc != nil {
		a = newArmed(sc)
	}
	for i := range s.defaults {
		s.defaults[i].Store(a)
	}
}

// SetDefaultFor sets the default scenario of one provider's requests; nil clears it.
func (s *Server) SetDefaultFor(p Provider, sc *Scenario) {
	i := p.index()
	if i < 0 {
		return
	}
	if sc == nil {
		s.defaults[i].Store(nil)
		return
	}
	s.defaults[i].Store(newArmed(sc))
}

// Default returns the current default scenario of a provider (nil when none or used up).
func (s *Server) Default(p Provider) *Scenario {
	i := p.index()
	if i < 0 {
		return nil
	}
	a := s.defaults[i].Load()
	if a == nil || a.remaining.Load() == 0 {
		return nil
	}
	sc := a.sc
	if n := a.remaining.Load(); n > 0 {
		sc.Times = int(n)
	}
	return &sc
}

// SetScenario adds or replaces a named scenario (selected with X-Fake-Scenario: name).
func (s *Server) SetScenario(name string, sc Scenario) error {
	if err := sc.Validate(); err != nil {
		return err
	}
	sc.Name = name
	for {
		old := s.named.Load()
		next := make(map[string]Scenario, len(*old)+1)
		for k, v := range *old {
			next[k] = v
		}
		next[name] = sc
		if s.named.CompareAndSwap(old, &next) {
			return nil
		}
	}
}

// Scenario returns a named scenario.
func (s *Server) Scenario(name string) (Scenario, bool) {
	sc, ok := (*s.named.Load())[name]
	return sc, ok
}

func (s *Server) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Server) nextSeq() uint64 { return s.seq.Add(1) }

// count adds one to the per-path counter.
func (s *Server) count(path string) {
	if v, ok := s.counts.Load(path); ok {
		v.(*atomic.Int64).Add(1)
		return
	}
	v, _ := s.counts.LoadOrStore(path, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// Count returns how many requests reached a path (e.g. "/v1/messages").
func (s *Server) Count(path string) int64 {
	if v, ok := s.counts.Load(path); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// Counts returns the number of requests per path.
func (s *Server) Counts() map[string]int64 {
	out := map[string]int64{}
	s.counts.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// bufPool holds request-body buffers when requests are not recorded.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads the request body; release returns its buffer to the pool.
func (s *Server) readBody(r *http.Request) (body []byte, tooLarge bool, release func(), err error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	_, err = buf.ReadFrom(io.LimitReader(r.Body, maxBody+1))
	if s.reqs != nil {
		// Recorded requests keep their body: copy it out of the pooled buffer.
		body = bytes.Clone(buf.Bytes())
		bufPool.Put(buf)
		release = func() {}
	} else {
		body = buf.Bytes()
		release = func() { bufPool.Put(buf) }
	}
	return body, len(body) > maxBody, release, err
}
