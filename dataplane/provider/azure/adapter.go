// Package azure is the wire code of Azure OpenAI (docs/providers.md "Azure OpenAI"): deployment, classic
// Responses and v1 URL forms, api-key or Entra bearer auth, feature checks per api-version.
// Streams, bodies and errors are OpenAI-shaped, read with the openai package (its chat reader
// tolerates Azure's prompt-filter and annotation chunks).
package azure

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/openai"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

const (
	// V1 is the AzureAPIVersion that selects the /openai/v1/ URL form (no api-version).
	V1 = "v1"
	// MinUsageVersion is the first dated api-version with max_completion_tokens and
	// stream_options (include_usage).
	MinUsageVersion = "2024-09-01"
	// MinResponsesVersion is the first dated api-version with the Responses API.
	MinResponsesVersion = "2025-03-01"
)

// RequestHeaders are the client request headers forwarded to Azure. Client credentials,
// OpenAI account headers (OpenAI-Organization, OpenAI-Project), cookies, hop-by-hop headers,
// Accept-Encoding and X-Stainless-* are dropped.
var RequestHeaders = []string{"Accept", "User-Agent"}

// Adapter serves one Azure OpenAI resource.
type Adapter struct {
	backend *snapshot.Backend
	base    string // https://{resource}.openai.azure.com
	version string // "v1" or a dated api-version
	opts    provider.Options
}

// New returns the adapter of an Azure OpenAI backend: an endpoint (the resource URL), an
// api-key (Credentials.APIKey) or an Entra ID token (Credentials.BearerToken), and
// AzureAPIVersion ("v1" when empty).
func New(b *snapshot.Backend, opts provider.Options) (*Adapter, error) {
	if b.Credentials.APIKey == "" && b.Credentials.BearerToken == "" {
		return nil, fmt.Errorf("azure backend %s: needs an api-key or a bearer token", b.Name)
	}
	if b.Endpoint == "" {
		return nil, fmt.Errorf("azure backend %s: no endpoint", b.Name)
	}
	base, err := provider.BaseEndpoint(b.Endpoint, "", "")
	if err != nil {
		return nil, fmt.Errorf("azure backend %s: %w", b.Name, err)
	}
	base = strings.TrimSuffix(strings.TrimSuffix(base, "/openai/v1"), "/openai")
	version := b.AzureAPIVersion
	if version == "" {
		version = V1
	}
	if version != V1 && !dated(version) {
		return nil, fmt.Errorf("azure backend %s: api version %q is neither v1 nor YYYY-MM-DD[-preview]", b.Name, version)
	}
	return &Adapter{backend: b, base: base, version: version, opts: opts}, nil
}

// dated reports whether v starts with a YYYY-MM-DD date.
func dated(v string) bool {
	if len(v) < 10 {
		return false
	}
	for i, c := range v[:10] {
		if (i == 4 || i == 7) != (c == '-') || (c != '-' && (c < '0' || c > '9')) {
			return false
		}
	}
	return len(v) == 10 || v[10] == '-'
}

// olderThan reports whether the backend's dated api-version predates date (v1 never does).
func (a *Adapter) olderThan(date string) bool {
	return a.version != V1 && a.version[:10] < date
}

func (a *Adapter) Backend() *snapshot.Backend { return a.backend }
func (a *Adapter) ProviderName() string       { return "azure" }

// BaseURL is the resource's OpenAI base: .../openai/v1 or .../openai.
func (a *Adapter) BaseURL() string {
	if a.version == V1 {
		return a.base + "/openai/v1"
	}
	return a.base + "/openai"
}

// UpstreamModel is the deployment: the backend's modelMap entry, else the canonical name.
func (a *Adapter) UpstreamModel(canonical, requested string) string {
	if m, ok := provider.MappedModel(a.backend, canonical); ok {
		return m
	}
	return canonical
}

// Supports reports whether the resource serves the call unchanged
// (docs/providers.md "Azure OpenAI"): the OpenAI operations; on a dated api-version older than 2024-09-01-preview no
// max_completion_tokens and no client-requested stream_options; on one older than
// 2025-03-01-preview no Responses; on Responses no context_management and no status on
// replayed input items. Stickiness (previous_response_id, conversation) is decided by the
// proxy core from RequestInfo.Sticky.
func (a *Adapter) Supports(c *provider.Call) (bool, string) {
	root := provider.JSONView(c.Body)
	switch c.Op {
	case provider.OpChatCompletions:
		if a.olderThan(MinUsageVersion) {
			if root.Get("max_completion_tokens").Exists() {
				return false, fmt.Sprintf("Azure api-version %s predates max_completion_tokens (2024-09-01-preview)", a.version)
			}
			if c.ClientWantsUsage && root.Get("stream_options").Exists() {
				return false, fmt.Sprintf("Azure api-version %s predates stream_options (2024-09-01-preview)", a.version)
			}
		}
	case provider.OpResponses:
		if a.olderThan(MinResponsesVersion) {
			return false, fmt.Sprintf("Azure api-version %s predates the Responses API (2025-03-01-preview)", a.version)
		}
		if root.Get("context_management").Exists() {
			return false, "Azure's Responses API does not support context_management"
		}
		if root.Get(`input.#(status)`).Exists() {
			return false, "Azure's Responses API rejects status on replayed input items"
		}
	default:
		return false, fmt.Sprintf("Azure OpenAI does not serve %s", c.Op)
	}
	return true, ""
}

// NewRequest builds the upstream request for the backend's URL form, with the deployment as
// the body's model and the resource's credential.
func (a *Adapter) NewRequest(ctx context.Context, c *provider.Call) (*http.Request, error) {
	if ok, reason := a.Supports(c); !ok {
		return nil, fmt.Errorf("azure: %s", reason)
	}
	if c.Model == "" {
		return nil, fmt.Errorf("azure: no deployment")
	}
	body, err := provider.EnsureModel(c.Body, c.Model)
	if err != nil {
		return nil, err
	}
	if c.Op == provider.OpChatCompletions && !c.ClientWantsUsage && a.olderThan(MinUsageVersion) {
		// The gateway injected include_usage; this version cannot take it (nor report usage).
		if body, err = sjson.DeleteBytes(body, "stream_options"); err != nil {
			return nil, fmt.Errorf("azure: drop stream_options: %w", err)
		}
	}
	req, err := provider.NewJSONRequest(ctx, a.url(c.Op, c.Model), body)
	if err != nil {
		return nil, err
	}
	provider.CopyHeaders(req.Header, c.Header, RequestHeaders...)
	if t := a.backend.Credentials.BearerToken; t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	} else {
		req.Header.Set("Api-Key", a.backend.Credentials.APIKey)
	}
	return req, nil
}

func (a *Adapter) url(op provider.Operation, deployment string) string {
	path := "/chat/completions"
	if op == provider.OpResponses {
		path = "/responses"
	}
	switch {
	case a.version == V1:
		return a.base + "/openai/v1" + path
	case op == provider.OpResponses:
		return a.base + "/openai/responses?api-version=" + url.QueryEscape(a.version)
	}
	return a.base + "/openai/deployments/" + url.PathEscape(deployment) + path + "?api-version=" + url.QueryEscape(a.version)
}

// Error classifies an error response (openai.Classify, which knows Azure's string code "429",
// DeploymentNotFound and the content_filter 400), also treating an innererror
// ResponsibleAIPolicyViolation as a content-policy result: never a failover.
func (a *Adapter) Error(c *provider.Call, status int, header http.Header, body []byte) *provider.UpstreamError {
	e := openai.Classify(status, header, body, a.opts.Now())
	for _, k := range []string{"error.innererror.code", "error.inner_error.code"} {
		if gjson.GetBytes(body, k).String() == "ResponsibleAIPolicyViolation" {
			e.Class, e.ContentPolicy = "", true
		}
	}
	return e
}

// Parse reads a non-streaming body; the client gets the upstream bytes unchanged.
func (a *Adapter) Parse(c *provider.Call, header http.Header, body []byte) (*provider.Result, []byte, error) {
	res, err := openai.ParseBody(c.Op, body)
	return res, nil, err
}

// Stream reads a streaming body.
func (a *Adapter) Stream(c *provider.Call, resp *http.Response) provider.EventReader {
	return openai.NewStream(c, resp, a.opts)
}

var _ provider.Adapter = (*Adapter)(nil)
