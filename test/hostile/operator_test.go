package hostile

import (
	"strings"
	"testing"
)

// operatorCases: the admin API is not served on the proxy port, whatever the path or key.
// (The admin port's own Service, the NetworkPolicies and the snapshot stream's TLS and token
// are the chart's and the operator's, tested there; docs/security.md.)
func operatorCases() []hostileCase {
	var cs []hostileCase
	for _, path := range []string{"/metrics", "/admin/backends", "/admin/teams", "/admin/snapshot", "/admin/streams",
		"/debug/pprof/", "/debug/pprof/goroutine?debug=2", "/healthz", "/readyz", "/v1/snapshot?pod=x"} {
		cs = append(cs, hostileCase{name: "admin API on the proxy port: " + path,
			run: func(t *testing.T, s *suite) {
				resp := s.gw.do(t, request{method: "GET", target: path, header: auth(keyAlpha)})
				requireError(t, resp, openAI, 404, 405)
				for _, admin := range []string{"llm_gateway_", "go_goroutines", "hostile/", "goroutine profile", "reservedMicros"} {
					if strings.Contains(string(resp.body), admin) {
						t.Errorf("the proxy port served admin content %q: %s", admin, resp.body)
					}
				}
			}})
	}
	return cs
}
