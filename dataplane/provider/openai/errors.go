package openai

import (
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Classify turns a non-2xx OpenAI-shaped error response (OpenAI or Azure OpenAI) into an
// *provider.UpstreamError. The error name (error.code, else error.type) decides first, the HTTP
// status second
// (docs/providers.md "OpenAI Chat Completions", "Azure OpenAI", "Error classification"):
//
//	429 rate_limit_exceeded, Azure code "429"        RateLimited
//	429 insufficient_quota                            QuotaExhausted
//	401, 403                                          UpstreamAuth
//	404 model_not_found, Azure DeploymentNotFound     NotFound (other 404s are the client's)
//	408                                               Timeout
//	5xx                                               ServerError
//	400 content_filter (Azure), content_policy_violation, invalid_prompt, bio_policy
//	                                                  "" with ContentPolicy (never a failover)
//	other 4xx                                         "" (the client's error, relayed as-is)
func Classify(status int, header http.Header, body []byte, now time.Time) *provider.UpstreamError {
	obj := gjson.GetBytes(body, "error")
	code := scalar(obj.Get("code"))
	typ := obj.Get("type").String()
	e := &provider.UpstreamError{
		Status:     status,
		Type:       code,
		Message:    obj.Get("message").String(),
		RetryAfter: provider.RetryAfter(header, now),
		Body:       body,
		Header:     header.Clone(),
	}
	if e.Type == "" {
		e.Type = typ
	}
	if e.Message == "" {
		e.Message = provider.StatusMessage(status)
	}
	e.Class, e.ContentPolicy = classify(status, code, typ)
	return e
}

// StreamError turns an error object that arrived inside a 200 stream (a chat chunk's top-level
// "error", or a Responses "error" event) into an *provider.UpstreamError. Unknown names are
// server errors: the request itself was accepted.
func StreamError(obj gjson.Result, raw []byte) *provider.UpstreamError {
	code := strings.Clone(scalar(obj.Get("code")))
	typ := strings.Clone(obj.Get("type").String())
	e := &provider.UpstreamError{
		Status:  http.StatusOK,
		Type:    code,
		Message: strings.Clone(obj.Get("message").String()),
		Body:    append([]byte(nil), raw...),
	}
	if e.Type == "" || e.Type == "error" {
		e.Type = typ
	}
	e.Class, e.ContentPolicy = classify(0, code, typ)
	if e.Class == "" && !e.ContentPolicy && typ != provider.OpenAIInvalidRequest {
		e.Class = snapshot.FailoverServerError
	}
	return e
}

func classify(status int, code, typ string) (class string, policy bool) {
	switch code {
	case "insufficient_quota":
		return snapshot.FailoverQuotaExhausted, false
	case "rate_limit_exceeded", "429", "RateLimitReached":
		return snapshot.FailoverRateLimited, false
	case "content_filter", "content_policy_violation", "invalid_prompt", "bio_policy", "ResponsibleAIPolicyViolation":
		return "", true
	case "model_not_found", "DeploymentNotFound":
		return snapshot.FailoverNotFound, false
	case "invalid_api_key", "invalid_organization":
		return snapshot.FailoverUpstreamAuth, false
	case "server_error", "internal_error":
		return snapshot.FailoverServerError, false
	}
	if typ == "insufficient_quota" {
		return snapshot.FailoverQuotaExhausted, false
	}
	switch {
	case status == http.StatusTooManyRequests:
		return snapshot.FailoverRateLimited, false
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return snapshot.FailoverUpstreamAuth, false
	case status == http.StatusRequestTimeout:
		return snapshot.FailoverTimeout, false
	case status >= 500:
		return snapshot.FailoverServerError, false
	}
	return "", false
}

// scalar reads a code that providers send as a string or a number (Azure: "429").
func scalar(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number:
		return r.Raw
	}
	return ""
}
