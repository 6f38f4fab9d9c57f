package hostile

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// tenancyCases: no request uses another team's credentials, routes or products, and nothing
// of the caller's request that is not the gateway's to forward reaches a provider.
func tenancyCases() []hostileCase {
	chat := chatBody(modelGPT, "")
	msg := messagesBody(modelClaude, "")
	cs := []hostileCase{
		// A Legacy-stage team's traffic is passed through with the team's legacy credential:
		// only a caller holding one of that team's gateway keys may cause that.
		{name: "legacy team, no key, product in the path",
			run: expect(post("/"+productLegacy+"/v1/chat/completions", auth(""), chat), openAI, 401)},
		{name: "legacy team, no key, X-PostHog-Product",
			run: expect(post("/v1/messages", with(anthropicAuth(""), "X-PostHog-Product", productLegacy), msg), anthropic, 401)},
		{name: "legacy team, wrong key, product in the path", reach: []string{"legacy"},
			run: wrongKey(post("/"+productLegacy+"/v1/chat/completions", auth("sk-hostile-wrong"), chat), openAI, "Authorization", "Bearer sk-hostile-wrong")},
		{name: "legacy team, wrong key, X-PostHog-Product", reach: []string{"legacy"},
			run: wrongKey(post("/v1/messages", with(anthropicAuth("sk-hostile-wrong"), "X-PostHog-Product", productLegacy), msg), anthropic, "X-Api-Key", "sk-hostile-wrong")},
		{name: "legacy team, another team's key, product in the path",
			run: expect(post("/"+productLegacy+"/v1/chat/completions", auth(keyAlpha), chat), openAI, 403)},
		{name: "legacy team, another team's key, X-PostHog-Product",
			run: expect(post("/v1/messages", with(anthropicAuth(keyBeta), "X-PostHog-Product", productLegacy), msg), anthropic, 403)},
		{name: "canary team (0% to the gateway), no key",
			run: expect(post("/"+productCanary+"/v1/messages", anthropicAuth(""), msg), anthropic, 401)},
		{name: "canary team, wrong key", reach: []string{"legacy"},
			run: wrongKey(post("/v1/chat/completions", with(auth("sk-hostile-wrong"), "X-PostHog-Product", productCanary), chat), openAI, "Authorization", "Bearer sk-hostile-wrong")},
		{name: "legacy team, the team's own key reaches the legacy gateway with the legacy credential only",
			reach: []string{"legacy"},
			run: func(t *testing.T, s *suite) {
				resp := s.gw.do(t, post("/v1/chat/completions", auth(keyLegacy), chat))
				require.Equal(t, 200, resp.status, "%s", resp)
				require.Equal(t, "legacy", resp.header.Get("X-Llm-Gateway-Path"))
				reqs := s.legacy.tap.requests()
				require.Len(t, reqs, 1)
				require.Equal(t, "Bearer "+legacyCredential, reqs[0].Header.Get("Authorization"))
				require.NotContains(t, reqs[0].Header, "X-Api-Key")
			}},

		// A product names a team: it must be the key's own.
		{name: "product of another team in the path",
			run: notAsBeta(expect(post("/"+productBeta+"/v1/chat/completions", auth(keyAlpha), chat), openAI, 403))},
		{name: "product of another team in X-PostHog-Product",
			run: notAsBeta(expect(post("/v1/messages", with(anthropicAuth(keyAlpha), "X-PostHog-Product", productBeta), msg), anthropic, 403))},

		// The client's query string and organisation headers are not the gateway's to forward.
		{name: "query string never reaches the provider (OpenAI)", reach: []string{"provider"},
			run: func(t *testing.T, s *suite) {
				r := post("", auth(keyAlpha), chat)
				r.target = "/v1/chat/completions?api-version=2024-10-21&api_key=stolen&model=o1-pro"
				resp := s.gw.do(t, r)
				require.Equal(t, 200, resp.status, "%s", resp)
				reqs := s.provider.tap.requests()
				require.Len(t, reqs, 1)
				require.Empty(t, reqs[0].RawQuery, "the provider got the client's query string")
			}},
		{name: "query string never reaches the provider (Anthropic, beta=true allowed)", reach: []string{"provider"},
			run: func(t *testing.T, s *suite) {
				r := post("", anthropicAuth(keyAlpha), msg)
				r.target = "/v1/messages?beta=true&anthropic-version=2099-01-01&x=1"
				resp := s.gw.do(t, r)
				require.Equal(t, 200, resp.status, "%s", resp)
				reqs := s.provider.tap.requests()
				require.Len(t, reqs, 1)
				require.Contains(t, []string{"", "beta=true"}, reqs[0].RawQuery, "only the documented beta=true may reach Anthropic")
			}},
		{name: "OpenAI-Organization and OpenAI-Project are not forwarded", reach: []string{"provider"},
			run: func(t *testing.T, s *suite) {
				resp := s.gw.do(t, post("/v1/chat/completions",
					with(auth(keyAlpha), "OpenAI-Organization", "org-attacker", "OpenAI-Project", "proj_attacker"), chat))
				require.Equal(t, 200, resp.status, "%s", resp)
				reqs := s.provider.tap.requests()
				require.Len(t, reqs, 1)
				require.Empty(t, reqs[0].Header.Values("Openai-Organization"), "the client's organisation went upstream")
				require.Empty(t, reqs[0].Header.Values("Openai-Project"), "the client's project went upstream")
				require.Equal(t, "Bearer "+upOpenAIKey, reqs[0].Header.Get("Authorization"))
			}},

		// Errors the gateway writes never carry internal addresses or Go error strings.
		{name: "unreachable backend: no internal address in the error (OpenAI)",
			run: func(t *testing.T, s *suite) {
				resp := s.gw.do(t, post("/v1/chat/completions", auth(keyAlpha), chatBody(modelGPTDead, "")))
				requireError(t, resp, openAI, 502, 503)
				require.NotContains(t, string(resp.body), s.deadAddr)
			}},
		{name: "unreachable backend: no internal address in the error (Anthropic)",
			run: func(t *testing.T, s *suite) {
				resp := s.gw.do(t, post("/v1/messages", anthropicAuth(keyAlpha), messagesBody(modelClaudeDead, "")))
				requireError(t, resp, anthropic, 502, 503, 529)
				require.NotContains(t, string(resp.body), s.deadAddr)
			}},
	}

	// Only the API paths and methods the gateway serves may go to a legacy upstream, even
	// for the team's own key.
	for _, p := range []struct {
		name, method, target string
		status               int
	}{
		{"dot segments after the API path", "POST", "/v1/chat/completions/../../admin/keys", 404},
		{"dot segments after a product", "POST", "/" + productLegacy + "/v1/../../../internal/config", 404},
		{"escaped dot segments", "POST", "/v1/%2e%2e/%2e%2e/admin", 404},
		{"escaped slash", "POST", "/v1/chat%2fcompletions", 404},
		{"double slash", "POST", "//v1/chat/completions", 404},
		{"an API path the gateway does not serve", "POST", "/v1/files", 404},
		{"an odd method on an API path", "DELETE", "/v1/chat/completions", 405},
		{"GET on a POST path", "GET", "/v1/chat/completions", 405},
	} {
		cs = append(cs, hostileCase{name: "legacy team, own key, path traversal: " + p.name,
			run: expect(request{method: p.method, target: p.target, header: auth(keyLegacy), body: []byte(chat)}, openAI, p.status)})
	}
	cs = append(cs, hostileCase{name: "gateway team, path traversal",
		run: expect(request{method: "POST", target: "/v1/chat/completions/../../../admin/backends", header: auth(keyAlpha), body: []byte(chat)}, openAI, 404)})
	return cs
}

// notAsBeta runs a case and asserts that it did not count as a call of team beta: beta's
// request counter (a sliding minute) did not grow and it holds no budget.
func notAsBeta(run func(t *testing.T, s *suite)) func(t *testing.T, s *suite) {
	return func(t *testing.T, s *suite) {
		before, err := s.gw.teamBudget("beta")
		require.NoError(t, err)
		run(t, s)
		after, err := s.gw.teamBudget("beta")
		require.NoError(t, err)
		require.LessOrEqual(t, after.RequestsLastMinute, before.RequestsLastMinute, "a call of team alpha counted as team beta's")
		require.Zero(t, after.ReservedMicros)
	}
}

// wrongKey: a key that is no gateway key, sent to a team still served by its legacy gateway,
// is either refused (401, nothing forwarded) or, for callers that hold only a legacy
// credential, passed through as it came: the legacy upstream then sees the caller's own
// credential, unchanged, and never the team's.
func wrongKey(r request, shape snapshot.Shape, header, value string) func(t *testing.T, s *suite) {
	return func(t *testing.T, s *suite) {
		resp := s.gw.do(t, r)
		reqs := s.legacy.tap.requests()
		if resp.status == 401 {
			requireError(t, resp, shape, 401)
			require.Empty(t, reqs, "a refused caller was forwarded")
			return
		}
		require.Len(t, reqs, 1, "answered %s without forwarding", resp)
		require.Equal(t, value, reqs[0].Header.Get(header), "the caller's own credential goes through unchanged")
		for k, vs := range reqs[0].Header {
			for _, v := range vs {
				require.NotContains(t, v, legacyCredential, "header %s carries the team's legacy credential", k)
				require.NotContains(t, v, canaryCredential, "header %s carries the team's legacy credential", k)
			}
		}
	}
}
