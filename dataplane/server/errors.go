package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Response headers the gateway adds.
const (
	HeaderRequestID   = "X-Request-Id"
	HeaderPath        = "X-Llm-Gateway-Path"
	HeaderBackend     = "X-Llm-Gateway-Backend"
	HeaderAttempts    = "X-Llm-Gateway-Attempts"
	HeaderErrorSource = "X-Gateway-Error-Source"
	HeaderShouldRetry = "X-Should-Retry"
)

// gatewayErr builds a GatewayError with the same type name in both shapes.
func gatewayErr(status int, anthropicType, openaiType, code, param, msg string) *provider.GatewayError {
	return &provider.GatewayError{Status: status, AnthropicType: anthropicType, OpenAIType: openaiType, Code: code, Param: param, Message: msg}
}

func errInvalidRequest(msg, param string) *provider.GatewayError {
	return gatewayErr(http.StatusBadRequest, provider.AnthropicInvalidRequest, provider.OpenAIInvalidRequest, "", param, msg)
}

func errUnauthorized(msg string) *provider.GatewayError {
	return gatewayErr(http.StatusUnauthorized, provider.AnthropicAuthentication, provider.OpenAIAuthentication, "invalid_api_key", "", msg)
}

func errForbidden(code, msg string) *provider.GatewayError {
	return gatewayErr(http.StatusForbidden, provider.AnthropicPermission, provider.OpenAIPermission, code, "", msg)
}

func errNotFound(code, param, msg string) *provider.GatewayError {
	return gatewayErr(http.StatusNotFound, provider.AnthropicNotFound, provider.OpenAIInvalidRequest, code, param, msg)
}

func errTooLarge(msg string) *provider.GatewayError {
	return gatewayErr(http.StatusRequestEntityTooLarge, provider.AnthropicTooLarge, provider.OpenAIInvalidRequest, "request_too_large", "", msg)
}

func errMethod(method, path string) *provider.GatewayError {
	return gatewayErr(http.StatusMethodNotAllowed, provider.AnthropicInvalidRequest, provider.OpenAIInvalidRequest, "method_not_allowed", "",
		"method "+method+" is not allowed on "+path)
}

func errUpstream(status int, code, msg string) *provider.GatewayError {
	t := provider.AnthropicAPIError
	switch status {
	case http.StatusGatewayTimeout:
		t = provider.AnthropicTimeout
	case http.StatusServiceUnavailable:
		t = provider.AnthropicOverloaded
	}
	return gatewayErr(status, t, provider.OpenAIServerError, code, "", msg)
}

// errorWriter writes gateway errors in the caller's shape.
type errorWriter struct {
	shape snapshot.Shape
	op    provider.Operation
}

// shapeForPath guesses the caller's shape for requests that match no operation.
func shapeForPath(path string, h http.Header) snapshot.Shape {
	if strings.Contains(path, "/messages") || h.Get("Anthropic-Version") != "" {
		return snapshot.ShapeAnthropic
	}
	return snapshot.ShapeOpenAI
}

// writeGatewayError writes e in shape, marked as produced by the gateway. retryAfter > 0 sends
// retry-after and lets SDKs retry; otherwise x-should-retry: false tells them not to.
func writeGatewayError(w http.ResponseWriter, shape snapshot.Shape, e *provider.GatewayError, retryAfter time.Duration) {
	writeGatewayErrorHint(w, shape, e, retryAfter, retryAfter > 0)
}

// writeGatewayErrorHint is writeGatewayError with the retry decision apart from the wait: a
// window that resets in an hour says so in retry-after, yet SDKs must not retry on their own.
func writeGatewayErrorHint(w http.ResponseWriter, shape snapshot.Shape, e *provider.GatewayError, retryAfter time.Duration, retry bool) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(HeaderErrorSource, "gateway")
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((retryAfter+time.Second-1)/time.Second), 10))
	}
	h.Set(HeaderShouldRetry, strconv.FormatBool(retry))
	w.WriteHeader(e.Status)
	_, _ = w.Write(provider.ErrorBody(shape, e.AnthropicType, e.OpenAIType, e.Code, e.Param, e.Message))
}
