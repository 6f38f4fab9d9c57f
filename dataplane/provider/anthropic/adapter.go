// Package anthropic is the wire code of the Anthropic Messages API: requests, the SSE stream,
// usage accumulation and error classes (docs/providers.md "Anthropic Messages"). Bedrock reuses its
// accumulator, parser and classifier for the Anthropic events it carries.
package anthropic

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// DefaultVersion is sent when the client sends no anthropic-version.
const DefaultVersion = "2023-06-01"

// RequestHeaders are the client request headers forwarded to Anthropic besides
// anthropic-version and anthropic-beta (handled separately). Everything else is dropped:
// client credentials (authorization, x-api-key), cookies, hop-by-hop headers, Accept-Encoding,
// the SDKs' X-Stainless-* telemetry.
var RequestHeaders = []string{"Accept", "User-Agent"}

// Adapter serves one Anthropic backend.
type Adapter struct {
	backend *snapshot.Backend
	base    string
	opts    provider.Options
}

// New returns the adapter of an Anthropic backend. It authenticates with the API key
// (x-api-key), or with a bearer token when the backend has only that.
func New(b *snapshot.Backend, opts provider.Options) (*Adapter, error) {
	if b.Credentials.APIKey == "" && b.Credentials.BearerToken == "" {
		return nil, fmt.Errorf("anthropic backend %s: no API key", b.Name)
	}
	base, err := provider.BaseEndpoint(b.Endpoint, snapshot.DefaultEndpoint(snapshot.ProviderAnthropic, ""), "/v1")
	if err != nil {
		return nil, fmt.Errorf("anthropic backend %s: %w", b.Name, err)
	}
	return &Adapter{backend: b, base: base, opts: opts}, nil
}

func (a *Adapter) Backend() *snapshot.Backend { return a.backend }
func (a *Adapter) BaseURL() string            { return a.base + "/v1" }
func (a *Adapter) ProviderName() string       { return "anthropic" }

// UpstreamModel is the backend's modelMap entry, else the canonical model.
func (a *Adapter) UpstreamModel(canonical, requested string) string {
	if m, ok := provider.MappedModel(a.backend, canonical); ok {
		return m
	}
	return canonical
}

var paths = map[provider.Operation]string{
	provider.OpMessages:    "/v1/messages",
	provider.OpCountTokens: "/v1/messages/count_tokens",
}

// Supports accepts the Anthropic-shaped operations.
func (a *Adapter) Supports(c *provider.Call) (bool, string) {
	if _, ok := paths[c.Op]; !ok {
		return false, fmt.Sprintf("Anthropic does not serve %s", c.Op)
	}
	return true, ""
}

// NewRequest builds the upstream request: the client's body (model set to c.Model), the
// backend's key, the client's anthropic-version (default 2023-06-01) and betas (several header
// lines joined into one), allowlisted headers, and ?beta=true when the client sent it (provider.ClientQuery: no other
// query parameter of the client's goes upstream).
func (a *Adapter) NewRequest(ctx context.Context, c *provider.Call) (*http.Request, error) {
	path, ok := paths[c.Op]
	if !ok {
		return nil, fmt.Errorf("anthropic: unsupported operation %s", c.Op)
	}
	body, err := provider.EnsureModel(c.Body, c.Model)
	if err != nil {
		return nil, err
	}
	req, err := provider.NewJSONRequest(ctx, provider.WithQuery(a.base+path, provider.ClientQuery(c.Op, c.RawQuery)), body)
	if err != nil {
		return nil, err
	}
	provider.CopyHeaders(req.Header, c.Header, RequestHeaders...)
	req.Header.Set("Anthropic-Version", Version(c.Header))
	if betas := Betas(c.Header); len(betas) > 0 {
		req.Header.Set("Anthropic-Beta", strings.Join(betas, ","))
	}
	if k := a.backend.Credentials.APIKey; k != "" {
		req.Header.Set("X-Api-Key", k)
	} else {
		req.Header.Set("Authorization", "Bearer "+a.backend.Credentials.BearerToken)
	}
	return req, nil
}

// Version is the client's anthropic-version, or DefaultVersion.
func Version(h http.Header) string {
	if v := strings.TrimSpace(h.Get("Anthropic-Version")); v != "" {
		return v
	}
	return DefaultVersion
}

// Betas collects the client's beta flags from every anthropic-beta header line, split on
// commas, trimmed and deduplicated, in order.
func Betas(h http.Header) []string {
	var out []string
	for _, line := range h.Values("Anthropic-Beta") {
		for _, f := range strings.Split(line, ",") {
			f = strings.TrimSpace(f)
			if f != "" && !contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Error classifies an error response (see Classify).
func (a *Adapter) Error(c *provider.Call, status int, header http.Header, body []byte) *provider.UpstreamError {
	return Classify(status, header, body, a.opts.Now())
}

// Parse reads a non-streaming body; the client gets the upstream bytes unchanged.
// count_tokens results carry no usage: counting is free.
func (a *Adapter) Parse(c *provider.Call, header http.Header, body []byte) (*provider.Result, []byte, error) {
	if c.Op == provider.OpCountTokens {
		if _, err := parseJSON(body, "count_tokens"); err != nil {
			return nil, nil, err
		}
		return &provider.Result{}, nil, nil
	}
	res, err := ParseMessage(body)
	return res, nil, err
}

// Stream reads a streaming body.
func (a *Adapter) Stream(c *provider.Call, resp *http.Response) provider.EventReader {
	return NewStreamReader(resp.Body, a.opts)
}

var _ provider.Adapter = (*Adapter)(nil)
