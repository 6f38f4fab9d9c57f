package server

import (
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/posthog/llm-gateway/dataplane/auth"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/rollout"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Attribution and product headers.
const (
	HeaderProduct    = "X-PostHog-Product"
	HeaderDistinctID = "X-PostHog-Distinct-Id"
	HeaderTraceID    = "X-PostHog-Trace-Id"
	HeaderSessionID  = "X-PostHog-Session-Id"
	HeaderProperties = "X-PostHog-Properties"
)

// opModels is the pseudo-operation of GET /v1/models.
const opModels provider.Operation = "models"

// operations maps the path after the optional /{product} prefix to its operation.
func operationOf(path string) (provider.Operation, bool) {
	switch path {
	case "/v1/chat/completions":
		return provider.OpChatCompletions, true
	case "/v1/responses":
		return provider.OpResponses, true
	case "/v1/messages":
		return provider.OpMessages, true
	case "/v1/messages/count_tokens":
		return provider.OpCountTokens, true
	case "/v1/models":
		return opModels, true
	}
	return "", false
}

// splitProduct splits "/{product}/v1/..." into the product and "/v1/...". A path that starts
// with /v1/ has no product.
func splitProduct(path string) (product, rest string) {
	if strings.HasPrefix(path, "/v1/") || path == "/v1" {
		return "", path
	}
	if len(path) < 2 {
		return "", path
	}
	i := strings.IndexByte(path[1:], '/')
	if i <= 0 { // no segment, or an empty one ("//v1/...")
		return "", path
	}
	if r := path[1+i:]; strings.HasPrefix(r, "/v1/") {
		return path[1 : 1+i], r
	}
	return "", path
}

// ServeHTTP is the gateway's request path.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{g: g, w: w, r: r}
	c.rec.Start = g.now()
	c.rec.RequestID = newRequestID()
	h := w.Header()
	h.Set(HeaderRequestID, c.rec.RequestID)
	h.Set(HeaderPath, string(rollout.PathGateway))
	defer c.recover()

	c.rt = g.rt.Load()
	product, rest := splitProduct(r.URL.Path)
	op, known := operationOf(rest)
	// A percent-encoded path is never one of the gateway's (they are plain ASCII): it is not
	// decoded into one, here or at a legacy upstream.
	known = known && r.URL.RawPath == ""
	c.op, c.shape = op, op.Shape()
	if !known {
		c.shape = shapeForPath(rest, r.Header)
	}
	if c.rt == nil {
		c.fail(errUpstream(http.StatusServiceUnavailable, "not_ready", "the gateway has no configuration yet"), time.Second)
		return
	}

	// Only the gateway's own operations go anywhere, a legacy upstream included.
	if !known {
		c.fail(errNotFound("unknown_url", "", "unknown request URL: "+r.Method+" "+r.URL.Path), 0)
		return
	}
	want := http.MethodPost
	if op == opModels {
		want = http.MethodGet
	}
	if r.Method != want {
		h.Set("Allow", want)
		c.fail(errMethod(r.Method, r.URL.Path), 0)
		return
	}

	// Who is calling: the team of the gateway key, and the team of the product named in the
	// path (unknown: 404) or in X-PostHog-Product (unknown: ignored, nothing is recorded).
	key, apiKeyHeader := auth.KeyFromHeader(r.Header)
	var (
		keyHash     auth.KeyHash
		keyTeam     *snapshot.Team
		productTeam *snapshot.Team
		inPath      = product != ""
	)
	if key != "" {
		keyHash = auth.HashKey(key)
		keyTeam, _ = c.rt.auth.Lookup(keyHash)
	}
	if inPath {
		pt, ok := c.rt.auth.Product(product)
		if !ok {
			c.fail(errNotFound("unknown_product", "", "unknown product "+product+" in the path "+r.URL.Path), 0)
			return
		}
		productTeam = pt
	} else if hp := r.Header.Get(HeaderProduct); hp != "" {
		if pt, ok := c.rt.auth.Product(hp); ok {
			product, productTeam = hp, pt
		}
	}

	if keyTeam == nil {
		// Not a gateway key. A caller of a team still (partly) served by its legacy gateway may
		// hold only that gateway's credential: it is passed through as it came, nothing
		// injected, so it opens nothing the caller could not open at the legacy gateway itself.
		if key != "" && productTeam != nil && productTeam.Rollout.Stage != snapshot.StageGateway &&
			c.forwardLegacy(productTeam, product, inPath, rest, false, false) {
			return
		}
		msg := auth.ErrInvalidKey.Error()
		if key == "" {
			msg = auth.ErrMissingKey.Error()
		}
		c.fail(errUnauthorized(msg), 0)
		return
	}
	if productTeam != nil && productTeam != keyTeam {
		c.fail(errForbidden("permission_denied", "product "+product+" does not belong to the team of this API key"), 0)
		return
	}
	c.team = keyTeam
	if productTeam != nil {
		c.rec.Product = product
	}

	// Ingress: does this team's traffic go to the gateway at all? Decided only now, for a
	// caller holding a key of the team.
	if stage := c.team.Rollout.Stage; stage != snapshot.StageGateway {
		var kh string
		if stage == snapshot.StageCanary {
			kh = keyHash.Hex()
		}
		if rollout.Decide(c.team, r.Header, kh) == rollout.PathLegacy &&
			c.forwardLegacy(c.team, product, inPath, rest, true, apiKeyHeader) {
			return
		}
	}

	g.metrics.Ingress.WithLabelValues(c.team.Name, string(rollout.PathGateway)).Inc()
	c.rec.Team = c.team.Name
	c.rec.PostHogAPIKey, c.rec.PostHogHost = c.team.PostHogAPIKey, c.team.PostHogHost

	if op == opModels {
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(c.rt.models)
		return
	}
	c.serve()
}

// forwardLegacy passes the request to team's legacy upstream: the operation's path (behind
// the product prefix when the path had one), the query the operation documents, and the
// team's legacy credential only for a caller authenticated with a key of the team. It
// reports false when the team has no legacy upstream.
func (c *call) forwardLegacy(team *snapshot.Team, product string, inPath bool, rest string, authenticated, apiKeyHeader bool) bool {
	path := rest
	if inPath {
		path = "/" + product + rest
	}
	c.w.Header().Set(HeaderPath, string(rollout.PathLegacy))
	ok := c.rt.legacy.ServeHTTP(c.w, c.r, rollout.Forward{
		Team: team.Name, Path: path, RawQuery: provider.ClientQuery(c.op, c.r.URL.RawQuery),
		Authenticated: authenticated, APIKeyHeader: apiKeyHeader, RequestID: c.rec.RequestID,
	})
	if !ok {
		c.w.Header().Set(HeaderPath, string(rollout.PathGateway))
		return false
	}
	c.g.metrics.Ingress.WithLabelValues(team.Name, string(rollout.PathLegacy)).Inc()
	return true
}

// recover turns a panic into a 500 in the caller's shape (when nothing was written yet) and
// a log line with the stack.
func (c *call) recover() {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	c.g.log.Error("panic in request handler", "request_id", c.rec.RequestID, "panic", v, "stack", string(debug.Stack()))
	if !c.committed {
		c.fail(gatewayErr(http.StatusInternalServerError, provider.AnthropicAPIError, provider.OpenAIServerError, "internal_error", "",
			"internal gateway error"), 0)
	}
}

// writeLegacyError answers a legacy passthrough the legacy upstream could not serve. The
// client learns only that; the detail (addresses, the Go error) goes to the log.
func (g *Gateway) writeLegacyError(w http.ResponseWriter, r *http.Request, f *rollout.Forward, err error) {
	g.log.Warn("legacy upstream failed", "request_id", f.RequestID, "team", f.Team, "error", err)
	_, rest := splitProduct(f.Path)
	writeGatewayError(w, shapeForPath(rest, r.Header), errUpstream(http.StatusBadGateway, "legacy_unreachable",
		"the legacy gateway could not be reached (request id "+f.RequestID+")"), 0)
}
