package provider

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/posthog/llm-gateway/internal/clock"
)

// Options are adapter settings shared by every provider.
type Options struct {
	// Clock is the clock for SigV4 signing times and HTTP-date retry-after values; nil means
	// the wall clock.
	Clock clock.Clock
	// MaxEventBytes bounds one upstream stream event (an SSE event or an event-stream frame);
	// 0 means DefaultMaxEventBytes. A larger event fails the stream with ErrMalformed.
	MaxEventBytes int
}

// DefaultMaxEventBytes bounds one upstream stream event. Responses' terminal event repeats the
// whole output, and image generation streams base64 images, so this is generous.
const DefaultMaxEventBytes = 32 << 20

// Now reads the configured clock.
func (o Options) Now() time.Time { return clock.Or(o.Clock).Now() }

// EventLimit returns the configured per-event bound.
func (o Options) EventLimit() int {
	if o.MaxEventBytes <= 0 {
		return DefaultMaxEventBytes
	}
	return o.MaxEventBytes
}

// NewJSONRequest builds a POST with a JSON body whose length is known and which can be
// re-read (GetBody), with no headers but Content-Type.
func NewJSONRequest(ctx context.Context, url string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build upstream request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// CopyHeaders copies the named request headers (canonical or not) from src to dst, every
// value of each. Client credentials, cookies and hop-by-hop headers are never named by an
// adapter, so they never reach an upstream.
func CopyHeaders(dst, src http.Header, names ...string) {
	for _, n := range names {
		if vs := src.Values(n); len(vs) > 0 {
			k := http.CanonicalHeaderKey(n)
			dst[k] = append([]string(nil), vs...)
		}
	}
}

// relayed are the upstream response headers a client may see on any response.
var relayed = map[string]bool{
	"Content-Type":         true,
	"Request-Id":           true,
	"X-Request-Id":         true,
	"Openai-Processing-Ms": true,
	"Openai-Version":       true,
	"Apim-Request-Id":      true,
	"X-Ms-Region":          true,
	"X-Amzn-Requestid":     true,
	"X-Should-Retry":       false, // the gateway decides retry advice itself
}

// relayedPrefixes are relayed header families (rate-limit state of the upstream account, which
// SDKs and dashboards read).
var relayedPrefixes = []string{"Anthropic-Ratelimit-", "X-Ratelimit-", "X-Amzn-Bedrock-"}

// ResponseHeaders copies the upstream response headers a client may see on a successful
// response into dst: content type, request ids, processing time, rate-limit state. Never
// hop-by-hop headers, cookies, Content-Length (the gateway may change the body) or retry hints.
// A Bedrock event stream's content type becomes text/event-stream, which is what the client
// receives after translation.
func ResponseHeaders(dst, src http.Header) {
	copyRelayed(dst, src, false)
}

// ErrorResponseHeaders is ResponseHeaders for an upstream error relayed to the client: it also
// keeps retry-after-ms and retry-after.
func ErrorResponseHeaders(dst, src http.Header) {
	copyRelayed(dst, src, true)
}

func copyRelayed(dst, src http.Header, retryHints bool) {
	for k, vs := range src {
		ck := http.CanonicalHeaderKey(k)
		ok := relayed[ck]
		if !ok && retryHints && (ck == "Retry-After" || ck == "Retry-After-Ms") {
			ok = true
		}
		if !ok {
			for _, p := range relayedPrefixes {
				if strings.HasPrefix(ck, p) {
					ok = true
					break
				}
			}
		}
		if !ok || len(vs) == 0 {
			continue
		}
		if ck == "Content-Type" && strings.HasPrefix(vs[0], "application/vnd.amazon.eventstream") {
			dst.Set(ck, "text/event-stream")
			continue
		}
		dst[ck] = append([]string(nil), vs...)
	}
}

// RetryAfter reads the upstream's wait hint: retry-after-ms (milliseconds), else retry-after
// (delta seconds, possibly fractional, or an HTTP date relative to now). It returns 0 when
// neither is present or parseable, or when a date is in the past.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// StatusMessage is the message of an error response whose body says nothing usable.
func StatusMessage(status int) string {
	if t := http.StatusText(status); t != "" {
		return fmt.Sprintf("upstream returned HTTP %d %s", status, t)
	}
	return fmt.Sprintf("upstream returned HTTP %d", status)
}
