package bedrock

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/posthog/llm-gateway/dataplane/provider/anthropic"
	"github.com/posthog/llm-gateway/dataplane/provider/internal/wire"
)

// AnthropicVersion is the only anthropic_version Bedrock accepts; it goes in the body.
const AnthropicVersion = "bedrock-2023-05-31"

// MaxBodyBytes is Bedrock's request payload limit (Anthropic's is 32 MB).
const MaxBodyBytes = 20 << 20

// SupportedBetas are the anthropic-beta flags verified to work on Bedrock InvokeModel (envoy
// ai-gateway's awsBedrockSupportedAnthropicBetas; compact-2026-01-12 from litellm, for the
// compaction edits of context_management). Any other flag makes Bedrock answer 400 "invalid
// beta flag", so a request that sends one is not served there.
var SupportedBetas = map[string]bool{
	"computer-use-2024-10-22":                  true,
	"computer-use-2025-01-24":                  true,
	"context-1m-2025-08-07":                    true,
	"context-management-2025-06-27":            true,
	"compact-2026-01-12":                       true,
	"dev-full-thinking-2025-05-14":             true,
	"fine-grained-tool-streaming-2025-05-14":   true,
	"interleaved-thinking-2025-05-14":          true,
	"mcp-client-2025-04-04":                    true,
	"mcp-client-2025-11-20":                    true,
	"model-context-window-exceeded-2025-08-26": true,
	"output-128k-2025-02-19":                   true,
	"pdfs-2024-09-25":                          true,
	"search-results-2025-06-09":                true,
	"token-counting-2024-11-01":                true,
	"token-efficient-tools-2025-02-19":         true,
	"tool-search-tool-2025-10-19":              true,
	"web-search-2025-03-05":                    true,
}

// BetaAliases are Anthropic flags Bedrock knows under another name.
var BetaAliases = map[string]string{
	"advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19",
}

// SupportedFields are the top-level body fields Bedrock's InvokeModel accepts for Claude
// (litellm BedrockInvokeAnthropicMessagesRequest), plus model and stream, which the envelope
// removes. Anything else (output_format, mcp_servers, container, service_tier, speed,
// inference_geo, a top-level cache_control ...) is a 400 there.
var SupportedFields = map[string]bool{
	"model": true, "stream": true,
	"anthropic_version": true, "anthropic_beta": true, "max_tokens": true, "messages": true,
	"system": true, "stop_sequences": true, "temperature": true, "top_p": true, "top_k": true,
	"tools": true, "tool_choice": true, "thinking": true, "metadata": true, "output_config": true,
	"context_management": true,
}

// Betas maps the client's anthropic-beta flags to Bedrock's names. It returns the first flag
// Bedrock rejects, if any.
func Betas(h http.Header) (betas []string, unsupported string) {
	for _, b := range anthropic.Betas(h) {
		if alias, ok := BetaAliases[b]; ok {
			b = alias
		}
		if !SupportedBetas[b] {
			return nil, b
		}
		if !contains(betas, b) {
			betas = append(betas, b)
		}
	}
	return betas, ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// check reports why Bedrock cannot serve this body and these headers unchanged ("" if it can).
func check(body []byte, h http.Header) string {
	if len(body) > MaxBodyBytes {
		return fmt.Sprintf("the request body (%d bytes) is over Bedrock's %d-byte limit", len(body), MaxBodyBytes)
	}
	if _, bad := Betas(h); bad != "" {
		return fmt.Sprintf("Bedrock does not support the anthropic-beta flag %q", bad)
	}
	reason := ""
	wire.JSON(body).ForEach(func(k, v gjson.Result) bool {
		switch {
		case !SupportedFields[k.Str]:
			reason = fmt.Sprintf("Bedrock does not support the request field %q", k.Str)
		case k.Str == "context_management":
			v.Get("edits").ForEach(func(_, e gjson.Result) bool {
				if t := e.Get("type").Str; t != "compact_20260112" {
					reason = fmt.Sprintf("Bedrock does not support the context_management edit %q", t)
				}
				return reason == ""
			})
		}
		return reason == ""
	})
	return reason
}

// Envelope turns an Anthropic Messages body into a Bedrock InvokeModel body: model and stream
// removed, anthropic_version set when absent, the beta flags (header) as an anthropic_beta
// array. Every other byte stays as the client sent it.
func Envelope(body []byte, betas []string) ([]byte, error) {
	var err error
	for _, f := range []string{"model", "stream"} {
		if gjson.GetBytes(body, f).Exists() {
			if body, err = sjson.DeleteBytes(body, f); err != nil {
				return nil, fmt.Errorf("bedrock envelope: delete %s: %w", f, err)
			}
		}
	}
	if !gjson.GetBytes(body, "anthropic_version").Exists() {
		if body, err = sjson.SetBytes(body, "anthropic_version", AnthropicVersion); err != nil {
			return nil, fmt.Errorf("bedrock envelope: set anthropic_version: %w", err)
		}
	}
	if len(betas) > 0 {
		if body, err = sjson.SetBytes(body, "anthropic_beta", betas); err != nil {
			return nil, fmt.Errorf("bedrock envelope: set anthropic_beta: %w", err)
		}
	}
	return body, nil
}

// CountTokensBody wraps an enveloped body for /count-tokens: max_tokens 1 when the client sent
// none (the body must validate as an InvokeModel body), base64 in
// {"input":{"invokeModel":{"body":...}}}.
func CountTokensBody(enveloped []byte) ([]byte, error) {
	if !gjson.GetBytes(enveloped, "max_tokens").Exists() {
		var err error
		if enveloped, err = sjson.SetBytes(enveloped, "max_tokens", 1); err != nil {
			return nil, fmt.Errorf("bedrock count-tokens: set max_tokens: %w", err)
		}
	}
	out := []byte(`{"input":{"invokeModel":{"body":"`)
	out = base64.StdEncoding.AppendEncode(out, enveloped)
	return append(out, `"}}}`...), nil
}

// CountTokensModel strips the cross-region prefix (and an ARN's path) from a model id:
// count-tokens takes the base model id.
func CountTokensModel(id string) string {
	base := id
	if strings.HasPrefix(base, "arn:") {
		base = base[strings.LastIndexByte(base, '/')+1:]
	}
	if i := strings.Index(base, "anthropic."); i > 0 && base[i-1] == '.' {
		return base[i:]
	}
	if base != id && strings.HasPrefix(base, "anthropic.") {
		return base
	}
	return id
}
