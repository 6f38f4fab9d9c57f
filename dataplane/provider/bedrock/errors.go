package bedrock

import (
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// exception is how one Bedrock exception is classified and shown to an Anthropic client.
type exception struct {
	class  string
	status int    // the Anthropic status the client sees
	typ    string // the Anthropic error.type the client sees
}

// exceptions maps Bedrock exception names (lowercased: HTTP errors use PascalCase, stream
// exception frames camelCase) per docs/providers.md "Bedrock errors". ServiceQuotaExceededException is HTTP 400
// on the wire but a quota failure, which is why the name decides, not the status.
var exceptions = map[string]exception{
	"throttlingexception":                 {snapshot.FailoverRateLimited, http.StatusTooManyRequests, provider.AnthropicRateLimit},
	"servicequotaexceededexception":       {snapshot.FailoverQuotaExhausted, http.StatusTooManyRequests, provider.AnthropicRateLimit},
	"modelnotreadyexception":              {snapshot.FailoverOverloaded, 529, provider.AnthropicOverloaded},
	"serviceunavailableexception":         {snapshot.FailoverOverloaded, 529, provider.AnthropicOverloaded},
	"internalserverexception":             {snapshot.FailoverServerError, http.StatusInternalServerError, provider.AnthropicAPIError},
	"modeltimeoutexception":               {snapshot.FailoverServerError, http.StatusGatewayTimeout, provider.AnthropicTimeout},
	"modelerrorexception":                 {snapshot.FailoverServerError, http.StatusInternalServerError, provider.AnthropicAPIError},
	"modelstreamerrorexception":           {snapshot.FailoverServerError, http.StatusInternalServerError, provider.AnthropicAPIError},
	"validationexception":                 {"", http.StatusBadRequest, provider.AnthropicInvalidRequest},
	"conflictexception":                   {"", http.StatusBadRequest, provider.AnthropicInvalidRequest},
	"accessdeniedexception":               {snapshot.FailoverUpstreamAuth, http.StatusForbidden, provider.AnthropicPermission},
	"unrecognizedclientexception":         {snapshot.FailoverUpstreamAuth, http.StatusForbidden, provider.AnthropicPermission},
	"invalidsignatureexception":           {snapshot.FailoverUpstreamAuth, http.StatusForbidden, provider.AnthropicPermission},
	"incompletesignatureexception":        {snapshot.FailoverUpstreamAuth, http.StatusForbidden, provider.AnthropicPermission},
	"expiredtokenexception":               {snapshot.FailoverUpstreamAuth, http.StatusForbidden, provider.AnthropicPermission},
	"missingauthenticationtokenexception": {snapshot.FailoverUpstreamAuth, http.StatusForbidden, provider.AnthropicPermission},
	"resourcenotfoundexception":           {snapshot.FailoverNotFound, http.StatusNotFound, provider.AnthropicNotFound},
}

// byStatus classifies an unnamed error.
func byStatus(status int) exception {
	switch {
	case status == http.StatusTooManyRequests:
		return exception{snapshot.FailoverRateLimited, status, provider.AnthropicRateLimit}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return exception{snapshot.FailoverUpstreamAuth, status, provider.AnthropicPermission}
	case status == http.StatusNotFound:
		return exception{"", status, provider.AnthropicNotFound}
	case status == http.StatusRequestEntityTooLarge:
		return exception{"", status, provider.AnthropicTooLarge}
	case status >= 500:
		return exception{snapshot.FailoverServerError, status, provider.AnthropicAPIError}
	case status == http.StatusOK: // an unknown exception inside a stream
		return exception{snapshot.FailoverServerError, http.StatusInternalServerError, provider.AnthropicAPIError}
	}
	return exception{"", status, provider.AnthropicInvalidRequest}
}

func lookup(name string, status int) exception {
	if x, ok := exceptions[strings.ToLower(name)]; ok {
		return x
	}
	return byStatus(status)
}

// ErrorName reads the exception name of an HTTP error as the AWS SDK does: the
// X-Amzn-ErrorType header, then the body's code, then __type; each sanitized to the text
// before ':' and after '#'.
func ErrorName(header http.Header, body []byte) string {
	name := header.Get("X-Amzn-Errortype")
	if name == "" {
		name = gjson.GetBytes(body, "code").String()
	}
	if name == "" {
		name = gjson.GetBytes(body, "__type").String()
	}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, '#'); i >= 0 {
		name = name[i+1:]
	}
	return strings.TrimSpace(name)
}

// Classify turns a non-2xx Bedrock response into an *provider.UpstreamError. Bedrock's JSON
// error never reaches an Anthropic client raw: Body is re-rendered in the Anthropic shape and
// Status is the status Anthropic would have used (ServiceQuotaExceededException 400 -> 429),
// so relaying Status + Body is always correct for the client. Type keeps the Bedrock name.
func Classify(status int, header http.Header, body []byte, now time.Time) *provider.UpstreamError {
	name := ErrorName(header, body)
	msg := message(gjson.ParseBytes(body))
	if msg == "" {
		msg = provider.StatusMessage(status)
	}
	x := lookup(name, status)
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	return &provider.UpstreamError{
		Class:      x.class,
		Status:     x.status,
		Type:       name,
		Message:    msg,
		RetryAfter: provider.RetryAfter(header, now),
		Body:       provider.ErrorBody(snapshot.ShapeAnthropic, x.typ, "", "", "", msg),
		Header:     h,
	}
}

// streamException turns an exception (or error) frame inside a 200 stream into an
// *provider.UpstreamError, with an Anthropic-shaped Body.
func streamException(name string, msg string) *provider.UpstreamError {
	x := lookup(name, http.StatusOK)
	if msg == "" {
		msg = "Bedrock stream failed: " + name
	}
	return &provider.UpstreamError{
		Class:   x.class,
		Status:  http.StatusOK,
		Type:    name,
		Message: msg,
		Body:    provider.ErrorBody(snapshot.ShapeAnthropic, x.typ, "", "", "", msg),
	}
}

// message reads an AWS error message ("message" or "Message"), with the model's own error for
// model stream errors.
func message(root gjson.Result) string {
	msg := root.Get("message").String()
	if msg == "" {
		msg = root.Get("Message").String()
	}
	if orig := root.Get("originalMessage").String(); orig != "" && !strings.Contains(msg, orig) {
		msg += ": " + orig
	}
	return strings.Clone(msg) // root may point into a reused frame buffer
}
