package anthropic

import (
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Classify turns a non-2xx Anthropic error response into an *provider.UpstreamError. The
// error.type decides first, the HTTP status second
// (docs/providers.md "Anthropic Messages", "Error classification"):
//
//	529 overloaded_error                                   Overloaded
//	500 api_error, 504 timeout_error, other 5xx            ServerError
//	429 rate_limit_error                                   RateLimited
//	429 rate_limit_error + details.error_code
//	    enforced_spend_limit_reached, 402 billing_error,
//	    400 "credit balance is too low"                    QuotaExhausted
//	401 authentication_error, 403 permission_error         UpstreamAuth
//	404 not_found_error naming a model                     NotFound (other 404s are the client's)
//	400 invalid_request_error, 413 request_too_large       "" (the client's error, relayed as-is)
func Classify(status int, header http.Header, body []byte, now time.Time) *provider.UpstreamError {
	obj := gjson.GetBytes(body, "error")
	e := &provider.UpstreamError{
		Status:     status,
		Type:       obj.Get("type").String(),
		Message:    obj.Get("message").String(),
		RetryAfter: provider.RetryAfter(header, now),
		Body:       body,
		Header:     header.Clone(),
	}
	if e.Message == "" {
		e.Message = provider.StatusMessage(status)
	}
	e.Class = ErrorClass(status, e.Type, obj.Get("details.error_code").String(), e.Message)
	return e
}

// StreamError turns an "event: error" that arrived after the 200 into an
// *provider.UpstreamError, classified by error.type (an unknown type is a server error: the
// request itself was accepted).
func StreamError(root gjson.Result, raw []byte) *provider.UpstreamError {
	obj := root.Get("error")
	e := &provider.UpstreamError{
		Status:  http.StatusOK,
		Type:    strings.Clone(obj.Get("type").String()),
		Message: strings.Clone(obj.Get("message").String()),
		Body:    append([]byte(nil), raw...),
	}
	e.Class = ErrorClass(0, e.Type, obj.Get("details.error_code").String(), e.Message)
	if e.Class == "" && e.Type != provider.AnthropicInvalidRequest && e.Type != provider.AnthropicTooLarge {
		e.Class = snapshot.FailoverServerError
	}
	return e
}

// ErrorClass is the failover class of an Anthropic error type, with the status as fallback.
func ErrorClass(status int, errType, detailCode, message string) string {
	switch errType {
	case provider.AnthropicOverloaded:
		return snapshot.FailoverOverloaded
	case provider.AnthropicAPIError, provider.AnthropicTimeout:
		return snapshot.FailoverServerError
	case provider.AnthropicRateLimit:
		if detailCode == "enforced_spend_limit_reached" {
			return snapshot.FailoverQuotaExhausted
		}
		return snapshot.FailoverRateLimited
	case provider.AnthropicBilling:
		return snapshot.FailoverQuotaExhausted
	case provider.AnthropicAuthentication, provider.AnthropicPermission:
		return snapshot.FailoverUpstreamAuth
	case provider.AnthropicNotFound:
		if strings.Contains(strings.ToLower(message), "model") {
			return snapshot.FailoverNotFound
		}
		return ""
	case provider.AnthropicInvalidRequest:
		// Before billing_error existed, an empty account answered 400 invalid_request_error.
		if strings.Contains(strings.ToLower(message), "credit balance is too low") {
			return snapshot.FailoverQuotaExhausted
		}
		return ""
	case provider.AnthropicTooLarge:
		return ""
	}
	switch {
	case status == 529:
		return snapshot.FailoverOverloaded
	case status == http.StatusTooManyRequests:
		return snapshot.FailoverRateLimited
	case status == http.StatusPaymentRequired:
		return snapshot.FailoverQuotaExhausted
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return snapshot.FailoverUpstreamAuth
	case status == http.StatusRequestTimeout:
		return snapshot.FailoverTimeout
	case status >= 500:
		return snapshot.FailoverServerError
	}
	return ""
}
