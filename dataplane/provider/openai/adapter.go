// Package openai is the wire code of the OpenAI API: Chat Completions and Responses requests,
// their streams, usage and error classes
// (docs/providers.md "OpenAI Chat Completions", "OpenAI Responses"). Azure OpenAI reuses
// its stream readers, parsers and classifier.
package openai

import (
	"context"
	"fmt"
	"net/http"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// RequestHeaders are the client request headers forwarded to OpenAI. Everything else is
// dropped: client credentials (authorization, x-api-key, api-key), the OpenAI account headers
// OpenAI-Organization and OpenAI-Project (they would pick an organization or project for the
// gateway's own key: the backend's key alone decides, use a project-scoped key), cookies,
// hop-by-hop headers, Accept-Encoding (the gateway parses the body), the SDKs' X-Stainless-*
// telemetry.
var RequestHeaders = []string{"OpenAI-Beta", "Accept", "User-Agent"}

// Adapter serves one OpenAI backend.
type Adapter struct {
	backend *snapshot.Backend
	base    string // endpoint without a trailing slash or /v1
	opts    provider.Options
}

// New returns the adapter of an OpenAI backend.
func New(b *snapshot.Backend, opts provider.Options) (*Adapter, error) {
	if b.Credentials.APIKey == "" {
		return nil, fmt.Errorf("openai backend %s: no API key", b.Name)
	}
	base, err := provider.BaseEndpoint(b.Endpoint, snapshot.DefaultEndpoint(snapshot.ProviderOpenAI, ""), "/v1")
	if err != nil {
		return nil, fmt.Errorf("openai backend %s: %w", b.Name, err)
	}
	return &Adapter{backend: b, base: base, opts: opts}, nil
}

func (a *Adapter) Backend() *snapshot.Backend { return a.backend }
func (a *Adapter) BaseURL() string            { return a.base + "/v1" }
func (a *Adapter) ProviderName() string       { return "openai" }

// UpstreamModel is the backend's modelMap entry, else the canonical model.
func (a *Adapter) UpstreamModel(canonical, requested string) string {
	if m, ok := provider.MappedModel(a.backend, canonical); ok {
		return m
	}
	return canonical
}

// Supports accepts the OpenAI-shaped operations.
func (a *Adapter) Supports(c *provider.Call) (bool, string) {
	if _, ok := paths[c.Op]; !ok {
		return false, fmt.Sprintf("OpenAI does not serve %s", c.Op)
	}
	return true, ""
}

var paths = map[provider.Operation]string{
	provider.OpChatCompletions: "/v1/chat/completions",
	provider.OpResponses:       "/v1/responses",
}

// NewRequest builds the upstream request: the client's body (model set to c.Model), Bearer
// auth with the backend's key, allowlisted headers. The client's query string is not forwarded
// (OpenAI documents none on these operations).
func (a *Adapter) NewRequest(ctx context.Context, c *provider.Call) (*http.Request, error) {
	path, ok := paths[c.Op]
	if !ok {
		return nil, fmt.Errorf("openai: unsupported operation %s", c.Op)
	}
	body, err := provider.EnsureModel(c.Body, c.Model)
	if err != nil {
		return nil, err
	}
	req, err := provider.NewJSONRequest(ctx, a.base+path, body)
	if err != nil {
		return nil, err
	}
	provider.CopyHeaders(req.Header, c.Header, RequestHeaders...)
	req.Header.Set("Authorization", "Bearer "+a.backend.Credentials.APIKey)
	return req, nil
}

// Error classifies an error response (see Classify).
func (a *Adapter) Error(c *provider.Call, status int, header http.Header, body []byte) *provider.UpstreamError {
	return Classify(status, header, body, a.opts.Now())
}

// Parse reads a non-streaming body; the client gets the upstream bytes unchanged.
func (a *Adapter) Parse(c *provider.Call, header http.Header, body []byte) (*provider.Result, []byte, error) {
	res, err := ParseBody(c.Op, body)
	return res, nil, err
}

// ParseBody parses a non-streaming body of either OpenAI operation.
func ParseBody(op provider.Operation, body []byte) (*provider.Result, error) {
	if op == provider.OpResponses {
		return ParseResponse(body)
	}
	return ParseChat(body)
}

// Stream reads a streaming body.
func (a *Adapter) Stream(c *provider.Call, resp *http.Response) provider.EventReader {
	return NewStream(c, resp, a.opts)
}

// NewStream returns the reader for the call's operation.
func NewStream(c *provider.Call, resp *http.Response, opts provider.Options) provider.EventReader {
	if c.Op == provider.OpResponses {
		return NewResponsesReader(resp.Body, opts)
	}
	return NewChatReader(c, resp.Body, opts)
}

var _ provider.Adapter = (*Adapter)(nil)
