package fakeprovider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Operation names the API operation a request was served as.
type Operation string

const (
	OpChat               Operation = "chat_completions"
	OpResponses          Operation = "responses"
	OpMessages           Operation = "messages"
	OpCountTokens        Operation = "count_tokens"
	OpInvoke             Operation = "invoke"
	OpInvokeStream       Operation = "invoke_with_response_stream"
	OpBedrockCountTokens Operation = "bedrock_count_tokens"
	OpModels             Operation = "models"
)

// Auth outcomes recorded on a Request.
const (
	AuthOK      = "ok"
	AuthMissing = "missing"
	AuthInvalid = "invalid"
)

// Request is one request the server received, as recorded.
type Request struct {
	Time      time.Time `json:"time"`
	Provider  Provider  `json:"provider"`
	Operation Operation `json:"operation"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	// RawPath is the path as escaped on the wire (e.g. a Bedrock model id with %3A).
	RawPath  string      `json:"rawPath"`
	RawQuery string      `json:"rawQuery"`
	Header   http.Header `json:"header"`
	Body     []byte      `json:"body"`
	// Auth is AuthOK, AuthMissing or AuthInvalid; AuthMethod says how the request
	// authenticated (bearer, x-api-key, api-key, sigv4) and AuthError why it failed.
	Auth       string `json:"auth"`
	AuthMethod string `json:"authMethod,omitempty"`
	AuthError  string `json:"authError,omitempty"`
	// Model is the body's model, the Bedrock path model id, or the Azure deployment.
	Model  string `json:"model,omitempty"`
	Stream bool   `json:"stream"`
	// Scenario is the name of the scenario applied ("" for none or an unnamed default).
	Scenario string `json:"scenario,omitempty"`
}

// MarshalJSON inlines a JSON body; any other body is a JSON string.
func (r Request) MarshalJSON() ([]byte, error) {
	type plain Request // drops the methods, so Marshal does not recurse
	body := json.RawMessage(r.Body)
	if !json.Valid(r.Body) {
		body, _ = json.Marshal(string(r.Body))
	}
	return json.Marshal(struct {
		plain
		Body json.RawMessage `json:"body"`
	}{plain(r), body})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (r *Request) UnmarshalJSON(b []byte) error {
	type plain Request
	var v struct {
		plain
		Body json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Request(v.plain)
	r.Body = v.Body
	var s string
	if len(v.Body) > 0 && v.Body[0] == '"' && json.Unmarshal(v.Body, &s) == nil {
		r.Body = []byte(s)
	}
	return nil
}

// requestLog is a bounded ring of recorded requests.
type requestLog struct {
	mu   sync.Mutex
	buf  []Request
	next int
	full bool
}

func (l *requestLog) add(r Request) {
	l.mu.Lock()
	l.buf[l.next] = r
	l.next++
	if l.next == len(l.buf) {
		l.next, l.full = 0, true
	}
	l.mu.Unlock()
}

func (l *requestLog) all() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.full {
		return append([]Request(nil), l.buf[:l.next]...)
	}
	out := make([]Request, 0, len(l.buf))
	out = append(out, l.buf[l.next:]...)
	return append(out, l.buf[:l.next]...)
}

func (l *requestLog) reset() {
	l.mu.Lock()
	clear(l.buf)
	l.next, l.full = 0, false
	l.mu.Unlock()
}

// Requests returns the recorded requests, oldest first (the most recent RecordRequests).
func (s *Server) Requests() []Request {
	if s.reqs == nil {
		return nil
	}
	return s.reqs.all()
}

// RequestsTo returns the recorded requests whose path is path.
func (s *Server) RequestsTo(path string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// LastRequest returns the most recent recorded request.
func (s *Server) LastRequest() (Request, bool) {
	all := s.Requests()
	if len(all) == 0 {
		return Request{}, false
	}
	return all[len(all)-1], true
}

// Reset clears the request log and the counts.
func (s *Server) Reset() {
	if s.reqs != nil {
		s.reqs.reset()
	}
	s.counts.Range(func(k, _ any) bool {
		s.counts.Delete(k)
		return true
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAdminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// adminSetDefault: POST /_fake/scenario[?provider=P] with a Scenario JSON body, or with
// {"name":"x"} alone to arm a named scenario. An empty body clears the default.
func (s *Server) adminSetDefault(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeAdminError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	var sc *Scenario
	if len(raw) > 0 {
		sc, err = s.decodeScenario(raw)
		if err != nil {
			writeAdminError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := sc.Validate(); err != nil {
			writeAdminError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	p := Provider(r.URL.Query().Get("provider"))
	switch {
	case p == "":
		s.SetDefault(sc)
	case p.index() >= 0:
		s.SetDefaultFor(p, sc)
	default:
		writeAdminError(w, http.StatusBadRequest, "unknown provider "+string(p))
		return
	}
	s.log.Info("fakeprovider: default scenario set", "provider", p, "scenario", scenarioName(sc))
	s.adminGetDefaults(w, r)
}

// decodeScenario decodes a Scenario body; {"name":"x"} alone refers to the named scenario x.
func (s *Server) decodeScenario(raw []byte) (*Scenario, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, fmt.Errorf("decode scenario: %w", err)
	}
	if _, ok := keys["name"]; ok && len(keys) == 1 {
		var ref struct{ Name string }
		_ = json.Unmarshal(raw, &ref)
		named, ok := s.Scenario(ref.Name)
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q", ref.Name)
		}
		return &named, nil
	}
	sc := new(Scenario)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(sc); err != nil {
		return nil, fmt.Errorf("decode scenario: %w", err)
	}
	return sc, nil
}

func scenarioName(sc *Scenario) string {
	if sc == nil {
		return "<none>"
	}
	if sc.Name == "" {
		return "<unnamed>"
	}
	return sc.Name
}

func (s *Server) adminClearDefault(w http.ResponseWriter, r *http.Request) {
	s.SetDefault(nil)
	s.adminGetDefaults(w, r)
}

func (s *Server) adminGetDefaults(w http.ResponseWriter, _ *http.Request) {
	out := map[Provider]*Scenario{}
	for _, p := range Providers {
		out[p] = s.Default(p)
	}
	writeJSON(w, http.StatusOK, out)
}

// adminSetNamed: POST /_fake/scenarios with {"name": Scenario, ...}.
func (s *Server) adminSetNamed(w http.ResponseWriter, r *http.Request) {
	var in map[string]Scenario
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeAdminError(w, http.StatusBadRequest, "decode scenarios: "+err.Error())
		return
	}
	for name, sc := range in {
		if err := s.SetScenario(name, sc); err != nil {
			writeAdminError(w, http.StatusBadRequest, "scenario "+name+": "+err.Error())
			return
		}
	}
	s.adminGetNamed(w, r)
}

func (s *Server) adminGetNamed(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, *s.named.Load())
}

func (s *Server) adminRequests(w http.ResponseWriter, r *http.Request) {
	reqs := s.Requests()
	if path := r.URL.Query().Get("path"); path != "" {
		reqs = s.RequestsTo(path)
	}
	if reqs == nil {
		reqs = []Request{}
	}
	writeJSON(w, http.StatusOK, reqs)
}

func (s *Server) adminReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminCounts(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Counts())
}
