package event

import (
	"strings"

	"github.com/posthog/llm-gateway/dataplane/provider"
)

// posthogGatewayHosts are PostHog's own gateway hosts: never an $ai_base_url (ingestion
// drops such events: docs/events.md "Property types and required properties").
var posthogGatewayHosts = map[string]bool{
	"gateway.us.posthog.com": true, "gateway.eu.posthog.com": true, "gateway.posthog.com": true,
	"ai-gateway.us.posthog.com": true, "ai-gateway.eu.posthog.com": true,
}

// hostOf returns the lowercase host of an absolute URL without parsing it fully.
func hostOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexAny(u, "/?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		u = u[i+1:]
	}
	if i := strings.LastIndexByte(u, ':'); i >= 0 && !strings.Contains(u[i:], "]") {
		u = u[:i]
	}
	return strings.ToLower(u)
}

func upstreamURL(u string) string {
	if u == "" || posthogGatewayHosts[hostOf(u)] {
		return ""
	}
	return u
}

// defaultProvider is the native provider of an operation's shape, for events of calls that
// never reached an upstream (rejections).
func defaultProvider(op provider.Operation) string {
	if op.Shape() == "Anthropic" {
		return "anthropic"
	}
	return "openai"
}
