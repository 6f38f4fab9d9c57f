package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// legacyCred is the credential the gateway injects on the legacy traffic of team "old".
const legacyCred = "legacy-cred"

// tenancyEnv: team "old" (key sk-legacy, product oldprod) at stage Legacy with a legacy
// credential; team beta owns the product bprod.
func tenancyEnv(t *testing.T, stage string) *env {
	return newEnv(t, func(s *snapshot.Snapshot) {
		s.Teams[1].Products = []string{"bprod"}
		s.Teams[2].Rollout = snapshot.Rollout{Stage: stage, LegacyUpstream: s.Teams[2].Rollout.LegacyUpstream, LegacyAPIKey: legacyCred}
		if stage == snapshot.StageCanary {
			s.Teams[2].Rollout.CanaryPercent = 100 // every authenticated caller goes to the gateway
		}
	})
}

// requireGatewayError checks a gateway error in the caller's shape.
func requireGatewayError(t *testing.T, resp *http.Response, status int, anthropic bool, errType string) string {
	t.Helper()
	body := readAll(t, resp)
	require.Equal(t, status, resp.StatusCode, body)
	require.Equal(t, "gateway", resp.Header.Get(HeaderErrorSource), body)
	if anthropic {
		require.Equal(t, "error", gjson.Get(body, "type").Str, body)
	} else {
		require.True(t, gjson.Get(body, "error.param").Exists(), body)
	}
	require.Equal(t, errType, gjson.Get(body, "error.type").Str, body)
	return body
}

// A legacy team's credential is injected only for callers holding a gateway key of that team;
// a caller without one never reaches the legacy upstream with it.
func TestLegacyCredentialOnlyForTheTeamsKey(t *testing.T) {
	for _, stage := range []string{snapshot.StageLegacy, snapshot.StageCanary} {
		t.Run(stage, func(t *testing.T) {
			e := tenancyEnv(t, stage)
			legacyCreds := func() []string {
				var out []string
				for _, r := range e.legacy.requests() {
					out = append(out, r.Header.Get("Authorization")+"|"+r.Header.Get("X-Api-Key"))
				}
				return out
			}

			// No credential at all: 401, nothing forwarded.
			resp := e.do("POST", "/oldprod/v1/chat/completions", "", chatBody)
			requireGatewayError(t, resp, http.StatusUnauthorized, false, "authentication_error")
			resp = e.do("POST", "/v1/messages", "", `{}`, HeaderProduct, "oldprod")
			requireGatewayError(t, resp, http.StatusUnauthorized, true, "authentication_error")
			require.Empty(t, legacyCreds())

			// Another team's gateway key naming the legacy team's product: 403, nothing forwarded.
			resp = e.do("POST", "/oldprod/v1/chat/completions", keyAlpha, chatBody)
			requireGatewayError(t, resp, http.StatusForbidden, false, "permission_error")
			resp = e.do("POST", "/v1/messages", "", `{}`, "x-api-key", keyAlpha, HeaderProduct, "oldprod")
			requireGatewayError(t, resp, http.StatusForbidden, true, "permission_error")
			require.Empty(t, legacyCreds())

			// A credential the gateway does not know (the caller's own legacy credential): passed
			// through unchanged, nothing injected; always legacy (the gateway cannot serve it).
			resp = e.do("POST", "/oldprod/v1/chat/completions", "caller-own-cred", chatBody)
			require.Equal(t, "legacy", resp.Header.Get(HeaderPath))
			require.Equal(t, http.StatusOK, resp.StatusCode, readAll(t, resp))
			resp = e.do("POST", "/v1/messages?beta=true", "", `{}`, "x-api-key", "caller-own-cred", HeaderProduct, "oldprod")
			require.Equal(t, "legacy", resp.Header.Get(HeaderPath))
			require.Equal(t, []string{"Bearer caller-own-cred|", "|caller-own-cred"}, legacyCreds())
			require.Equal(t, "beta=true", e.legacy.requests()[1].Query)
		})
	}

	// The team's own key: forwarded with the team's legacy credential in the header the caller
	// used, the gateway key removed.
	e := tenancyEnv(t, snapshot.StageLegacy)
	resp := e.do("POST", "/v1/chat/completions", keyLegacy, chatBody, "X-Api-Key", "junk")
	require.Equal(t, "legacy", resp.Header.Get(HeaderPath))
	resp = e.do("POST", "/oldprod/v1/messages", "", `{}`, "x-api-key", keyLegacy)
	require.Equal(t, "legacy", resp.Header.Get(HeaderPath))
	reqs := e.legacy.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, "Bearer "+legacyCred, reqs[0].Header.Get("Authorization"))
	require.Empty(t, reqs[0].Header.Values("X-Api-Key"))
	require.Equal(t, legacyCred, reqs[1].Header.Get("X-Api-Key"))
	require.Empty(t, reqs[1].Header.Values("Authorization"))
	require.Equal(t, "/oldprod/v1/messages", reqs[1].Path)
	for _, r := range reqs {
		require.NotContains(t, fmt.Sprint(r.Header), keyLegacy, "the gateway key never reaches the legacy upstream")
	}
	require.Zero(t, e.a.count()+e.b.count()+e.c.count())
}

// Only the API paths and methods the gateway serves go to a legacy upstream; everything else is
// answered by the gateway in the caller's shape.
func TestLegacyForwardsOnlyServedPaths(t *testing.T) {
	e := tenancyEnv(t, snapshot.StageLegacy)
	for _, tc := range []struct {
		method, path string
		status       int
		anthropic    bool
		errType      string
	}{
		{"GET", "/v1/chat/completions", 405, false, "invalid_request_error"},
		{"DELETE", "/v1/messages", 405, true, "invalid_request_error"},
		{"PROPFIND", "/oldprod/v1/messages", 405, true, "invalid_request_error"},
		{"POST", "/v1/models", 405, false, "invalid_request_error"},
		{"POST", "/v1/embeddings", 404, false, "invalid_request_error"},
		{"POST", "/admin/teams", 404, false, "invalid_request_error"},
		{"POST", "/v1/../admin/teams", 404, false, "invalid_request_error"},
		{"POST", "/oldprod/../v1/chat/completions", 404, false, "invalid_request_error"},
		{"POST", "/v1/messages/../../internal", 404, true, "not_found_error"},
		{"POST", "/v1/%2e%2e/admin", 404, false, "invalid_request_error"},
		{"POST", "/oldprod%2F..%2Fv1/chat/completions", 404, false, "invalid_request_error"},
		{"POST", "/v1/chat%2Fcompletions", 404, false, "invalid_request_error"},
		{"POST", "/v1/messages/", 404, true, "not_found_error"},
		{"POST", "//v1/chat/completions", 404, false, "invalid_request_error"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := e.do(tc.method, tc.path, keyLegacy, `{}`)
			requireGatewayError(t, resp, tc.status, tc.anthropic, tc.errType)
			require.Equal(t, "gateway", resp.Header.Get(HeaderPath))
		})
	}
	// A request line the client library would clean up, sent raw.
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /oldprod/v1/../../../etc/passwd HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+keyLegacy+
		"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Zero(t, e.legacy.count(), "nothing reached the legacy upstream")

	// The paths the gateway serves do go through, and GET /v1/models.
	for _, p := range []string{"/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/messages/count_tokens", "/oldprod/v1/messages"} {
		resp := e.do("POST", p, keyLegacy, `{}`)
		require.Equal(t, "legacy", resp.Header.Get(HeaderPath), p)
	}
	resp = e.do("GET", "/v1/models", keyLegacy, "")
	require.Equal(t, "legacy", resp.Header.Get(HeaderPath))
	var paths []string
	for _, r := range e.legacy.requests() {
		paths = append(paths, r.Method+" "+r.Path)
	}
	require.Equal(t, []string{"POST /v1/chat/completions", "POST /v1/responses", "POST /v1/messages", "POST /v1/messages/count_tokens",
		"POST /oldprod/v1/messages", "GET /v1/models"}, paths)
}

// A product named in the path or X-PostHog-Product must be the key's team's: a key of team A
// never records, spends or routes as team B.
func TestProductMustBelongToTheKeysTeam(t *testing.T) {
	e := tenancyEnv(t, snapshot.StageGateway)
	resp := e.do("POST", "/bprod/v1/chat/completions", keyAlpha, chatBody)
	body := requireGatewayError(t, resp, http.StatusForbidden, false, "permission_error")
	require.Equal(t, "permission_denied", gjson.Get(body, "error.code").Str)
	require.Equal(t, "false", resp.Header.Get(HeaderShouldRetry))
	resp = e.do("POST", "/v1/messages", "", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}`, "x-api-key", keyAlpha, HeaderProduct, "bprod")
	requireGatewayError(t, resp, http.StatusForbidden, true, "permission_error")
	resp = e.do("GET", "/bprod/v1/models", keyAlpha, "")
	requireGatewayError(t, resp, http.StatusForbidden, false, "permission_error")
	require.Zero(t, e.a.count()+e.b.count()+e.c.count(), "nothing reached a provider")
	require.Empty(t, e.recorder.Calls(), "nothing recorded for either team")

	// The key's own product (path or header) is served and recorded under the key's team.
	resp = e.do("POST", "/bprod/v1/chat/completions", keyBeta, chatBody)
	require.Equal(t, http.StatusOK, resp.StatusCode, readAll(t, resp))
	rec := e.recorder.Last(t)
	require.Equal(t, "beta", rec.Team)
	require.Equal(t, "bprod", rec.Product)
	resp = e.do("POST", "/v1/chat/completions", keyAlpha, chatBody, HeaderProduct, "max")
	require.Equal(t, http.StatusOK, resp.StatusCode, readAll(t, resp))
	rec = e.recorder.Last(t)
	require.Equal(t, "alpha", rec.Team)
	require.Equal(t, "max", rec.Product)

	// A legacy team's key naming a gateway team's product is refused too: it neither reaches the
	// legacy upstream nor the gateway as the other team.
	resp = e.do("POST", "/bprod/v1/chat/completions", keyLegacy, chatBody)
	requireGatewayError(t, resp, http.StatusForbidden, false, "permission_error")
	require.Zero(t, e.legacy.count())
}

// Without a key, a product does not let a caller into the gateway either.
func TestProductIsNotACredential(t *testing.T) {
	e := tenancyEnv(t, snapshot.StageGateway)
	resp := e.do("POST", "/bprod/v1/chat/completions", "", chatBody)
	requireGatewayError(t, resp, http.StatusUnauthorized, false, "authentication_error")
	resp = e.do("POST", "/v1/chat/completions", "sk-unknown", chatBody, HeaderProduct, "bprod")
	requireGatewayError(t, resp, http.StatusUnauthorized, false, "authentication_error")
	require.Zero(t, e.a.count()+e.b.count()+e.c.count())
}
