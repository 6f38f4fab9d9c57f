// Package bedrock is the wire code of Claude on AWS Bedrock (InvokeModel,
// InvokeModelWithResponseStream, CountTokens): the body envelope, SigV4 or API-key auth, the
// event-stream to Anthropic SSE translation, and error classes
// (docs/providers.md "AWS Bedrock: requests, model ids and auth" and the sections after it). A
// client of the gateway speaks the Anthropic Messages API and cannot tell Bedrock served it:
// streams, bodies and errors come back in the Anthropic shape.
package bedrock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/anthropic"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// SigningName is the SigV4 service name of Bedrock Runtime (not "bedrock-runtime").
const SigningName = "bedrock"

// Adapter serves one Bedrock backend.
type Adapter struct {
	backend *snapshot.Backend
	base    string
	creds   aws.Credentials
	signer  *v4.Signer
	opts    provider.Options
}

// New returns the adapter of a Bedrock backend. It needs a region, and either a Bedrock API
// key (Credentials.BearerToken, sent as a bearer token) or static AWS keys (SigV4, with the
// session token when set). The endpoint defaults to
// Bedrock Runtime in the region (snapshot.DefaultEndpoint).
func New(b *snapshot.Backend, opts provider.Options) (*Adapter, error) {
	if b.Region == "" {
		return nil, fmt.Errorf("bedrock backend %s: no region", b.Name)
	}
	c := b.Credentials
	if c.BearerToken == "" && (c.AWSAccessKeyID == "" || c.AWSSecretAccessKey == "") {
		return nil, fmt.Errorf("bedrock backend %s: needs a Bedrock API key or an AWS access key id and secret", b.Name)
	}
	base, err := provider.BaseEndpoint(b.Endpoint, snapshot.DefaultEndpoint(snapshot.ProviderBedrock, b.Region), "")
	if err != nil {
		return nil, fmt.Errorf("bedrock backend %s: %w", b.Name, err)
	}
	return &Adapter{
		backend: b,
		base:    base,
		creds:   aws.Credentials{AccessKeyID: c.AWSAccessKeyID, SecretAccessKey: c.AWSSecretAccessKey, SessionToken: c.AWSSessionToken},
		signer:  v4.NewSigner(),
		opts:    opts,
	}, nil
}

func (a *Adapter) Backend() *snapshot.Backend { return a.backend }
func (a *Adapter) BaseURL() string            { return a.base }
func (a *Adapter) ProviderName() string       { return "bedrock" }

// UpstreamModel is the backend's modelMap entry; else the Bedrock id derived from the
// canonical model (the cross-region inference profile of the backend region's geography:
// us-*, us-gov-*, eu-*, ap-* -> apac; the base model id elsewhere); else the requested name
// when it already is a Bedrock id; else the canonical name (Bedrock will answer
// ResourceNotFound, a NotFound failover).
func (a *Adapter) UpstreamModel(canonical, requested string) string {
	if m, ok := provider.MappedModel(a.backend, canonical); ok {
		return m
	}
	if id, ok := catalog.BedrockModelID(canonical, Geo(a.backend.Region)); ok {
		return id
	}
	if _, _, ok := catalog.ParseBedrockID(requested); ok {
		return requested
	}
	return canonical
}

// Geo is the inference-profile prefix for a region ("" when there is no usual one).
func Geo(region string) string {
	switch {
	case strings.HasPrefix(region, "us-gov-"):
		return "us-gov"
	case strings.HasPrefix(region, "us-"):
		return "us"
	case strings.HasPrefix(region, "eu-"):
		return "eu"
	case strings.HasPrefix(region, "ap-"):
		return "apac"
	}
	return ""
}

// Supports reports whether Bedrock serves the call unchanged: the Messages operations, betas
// in SupportedBetas, top-level fields in SupportedFields, a body within 20 MB. A request
// Bedrock would reject, or serve differently, is never silently stripped.
func (a *Adapter) Supports(c *provider.Call) (bool, string) {
	if c.Op != provider.OpMessages && c.Op != provider.OpCountTokens {
		return false, fmt.Sprintf("Bedrock does not serve %s", c.Op)
	}
	if reason := check(c.Body, c.Header); reason != "" {
		return false, reason
	}
	return true, ""
}

// NewRequest builds the signed upstream request: the enveloped body, the model id in the path
// (escaped, so the signer sees the URL that goes on the wire), /invoke, /invoke-with-response-
// stream or /count-tokens.
func (a *Adapter) NewRequest(ctx context.Context, c *provider.Call) (*http.Request, error) {
	if ok, reason := a.Supports(c); !ok {
		return nil, fmt.Errorf("bedrock: %s", reason)
	}
	model := c.Model
	if model == "" {
		model = gjson.GetBytes(c.Body, "model").Str
	}
	if model == "" {
		return nil, fmt.Errorf("bedrock: no model id")
	}
	betas, _ := Betas(c.Header)
	body, err := Envelope(c.Body, betas)
	if err != nil {
		return nil, err
	}
	action := "invoke"
	switch {
	case c.Op == provider.OpCountTokens:
		action, model = "count-tokens", CountTokensModel(model)
		if body, err = CountTokensBody(body); err != nil {
			return nil, err
		}
	case c.Stream:
		action = "invoke-with-response-stream"
	}
	req, err := provider.NewJSONRequest(ctx, a.base, body)
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimRight(req.URL.Path, "/")
	req.URL.Path = prefix + "/model/" + model + "/" + action
	req.URL.RawPath = prefix + "/model/" + url.PathEscape(model) + "/" + action
	if c.Stream && c.Op == provider.OpMessages {
		req.Header.Set("X-Amzn-Bedrock-Accept", "application/json")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if err := a.authorize(ctx, req, body); err != nil {
		return nil, err
	}
	return req, nil
}

// authorize adds the bearer key, or signs the final request with SigV4 (last: nothing may
// change the request after this).
func (a *Adapter) authorize(ctx context.Context, req *http.Request, body []byte) error {
	if t := a.backend.Credentials.BearerToken; t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
		return nil
	}
	sum := sha256.Sum256(body)
	err := a.signer.SignHTTP(ctx, a.creds, req, hex.EncodeToString(sum[:]), SigningName, a.backend.Region, a.opts.Now())
	if err != nil {
		return fmt.Errorf("bedrock: sign request: %w", err)
	}
	return nil
}

// Error classifies an error response; its Body is Anthropic-shaped (see Classify).
func (a *Adapter) Error(c *provider.Call, status int, header http.Header, body []byte) *provider.UpstreamError {
	return Classify(status, header, body, a.opts.Now())
}

// Parse reads a non-streaming body. A Messages body is already an Anthropic Message (usage
// falls back to the x-amzn-bedrock-*-token-count headers when absent); a count-tokens answer
// {"inputTokens":N} is rewritten to Anthropic's {"input_tokens":N}.
func (a *Adapter) Parse(c *provider.Call, header http.Header, body []byte) (*provider.Result, []byte, error) {
	if c.Op == provider.OpCountTokens {
		v := gjson.GetBytes(body, "inputTokens")
		if v.Type != gjson.Number {
			return nil, nil, fmt.Errorf("%w: bedrock count-tokens body has no inputTokens", provider.ErrMalformed)
		}
		return &provider.Result{}, fmt.Appendf(nil, `{"input_tokens":%d}`, v.Int()), nil
	}
	res, err := anthropic.ParseMessage(body)
	if err != nil {
		return nil, nil, err
	}
	if !res.UsageReported {
		headerUsage(res, header)
	}
	return res, nil, nil
}

// headerUsage reads the token counts Bedrock puts in response headers.
func headerUsage(res *provider.Result, h http.Header) {
	n := func(k string) (int64, bool) {
		v := h.Get(k)
		if v == "" {
			return 0, false
		}
		x, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return x, err == nil
	}
	in, ok1 := n("X-Amzn-Bedrock-Input-Token-Count")
	out, ok2 := n("X-Amzn-Bedrock-Output-Token-Count")
	if !ok1 || !ok2 {
		return
	}
	read, _ := n("X-Amzn-Bedrock-Cache-Read-Input-Token-Count")
	write, _ := n("X-Amzn-Bedrock-Cache-Write-Input-Token-Count")
	res.Usage, res.UsageReported = cost.FromAnthropic(in, read, write, 0, 0, out), true
}

// Stream reads a streaming body (event-stream frames) as Anthropic SSE.
func (a *Adapter) Stream(c *provider.Call, resp *http.Response) provider.EventReader {
	return NewStreamReader(resp.Body, a.opts)
}

var _ provider.Adapter = (*Adapter)(nil)
