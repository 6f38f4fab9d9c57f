package provider

import (
	"fmt"
	"net/url"
	"strings"
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

// WithQuery appends a raw query string to a URL that has none.
func WithQuery(u, rawQuery string) string {
	if rawQuery == "" {
		return u
	}
	return u + "?" + rawQuery
}
