package provider

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// BaseEndpoint validates a backend endpoint (def when empty) and returns it without a trailing
// slash or the given API suffix (e.g. "/v1"), so that an endpoint written either way works.
func BaseEndpoint(endpoint, def, suffix string) (string, error) {
	if endpoint == "" {
		endpoint = def
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("endpoint %q: want an http(s) URL with a host", endpoint)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("endpoint %q: must not have a query or fragment", endpoint)
	}
	base := strings.TrimRight(endpoint, "/")
	if suffix != "" {
		base = strings.TrimRight(strings.TrimSuffix(base, suffix), "/")
	}
	return base, nil
}

// ClientQuery is the part of a client's query string that may go upstream for op: on the
// Anthropic operations, beta=true (the Anthropic SDKs call /v1/messages?beta=true for beta
// features), written exactly so; nothing else. OpenAI documents no query parameter on the
// operations the gateway serves, and Azure and Bedrock URLs are built by their adapters. A
// client's query string is never forwarded as sent: it could name another API version, a
// deployment or anything a provider or a proxy on the way reads.
func ClientQuery(op Operation, raw string) string {
	if op.Shape() != snapshot.ShapeAnthropic {
		return ""
	}
	for raw != "" {
		var param string
		param, raw, _ = strings.Cut(raw, "&")
		if param == "beta=true" {
			return "beta=true"
		}
	}
	return ""
}

// WithQuery appends a raw query string to a URL that has none.
func WithQuery(u, rawQuery string) string {
	if rawQuery == "" {
		return u
	}
	return u + "?" + rawQuery
}
