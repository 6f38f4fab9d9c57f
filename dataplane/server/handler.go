package server

import (
	"bytes"
	"errors"
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
	if i < 0 {
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
	w.Header().Set(HeaderRequestID, c.rec.RequestID)
	defer c.recover()

	c.rt = g.rt.Load()
	product, rest := splitProduct(r.URL.Path)
	op, known := operationOf(rest)
	c.op, c.shape = op, op.Shape()
	if !known {
		c.shape = shapeForPath(rest, r.Header)
	}
	if c.rt == nil {
		c.fail(errUpstream(http.StatusServiceUnavailable, "not_ready", "the gateway has no configuration yet"), time.Second)
		return
	}

	// Ingress: who is calling, and does this team's traffic go to the gateway at all?
	key, _ := auth.KeyFromHeader(r.Header)
	var keyHash auth.KeyHash
	if key != "" {
		keyHash = auth.HashKey(key)
		c.team, _ = c.rt.auth.Lookup(keyHash)
	}
	if product != "" {
		pt, ok := c.rt.auth.Product(product)
		if !ok {
			c.fail(errNotFound("unknown_product", "", "unknown product "+product+" in the path "+r.URL.Path), 0)
			return
		}
		c.rec.Product = product
		if c.team == nil {
			c.team = pt
		}
	} else if hp := r.Header.Get(HeaderProduct); hp != "" {
		if pt, ok := c.rt.auth.Product(hp); ok {
			c.rec.Product = hp
			if c.team == nil {
				c.team = pt
			}
		}
	}
	if c.team != nil && c.team.Rollout.Stage != snapshot.StageGateway {
		var kh string
		if key != "" && c.team.Rollout.Stage == snapshot.StageCanary {
			kh = keyHash.Hex()
		}
		if rollout.Decide(c.team, r.Header, kh) == rollout.PathLegacy {
			g.metrics.Ingress.WithLabelValues(c.team.Name, string(rollout.PathLegacy)).Inc()
			w.Header().Set(HeaderPath, string(rollout.PathLegacy))
			if c.rt.legacy.ServeHTTP(w, r, c.team.Name) {
				return
			}
		}
	}
	w.Header().Set(HeaderPath, string(rollout.PathGateway))

	if !known {
		c.fail(errNotFound("unknown_url", "", "unknown request URL: "+r.Method+" "+r.URL.Path), 0)
		return
	}
	want := http.MethodPost
	if op == opModels {
		want = http.MethodGet
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		c.fail(errMethod(r.Method, r.URL.Path), 0)
		return
	}

	// Auth: the key must belong to a team (a product alone is not a credential).
	if key == "" {
		c.fail(errUnauthorized(auth.ErrMissingKey.Error()), 0)
		return
	}
	keyTeam, ok := c.rt.auth.Lookup(keyHash)
	if !ok {
		c.fail(errUnauthorized(auth.ErrInvalidKey.Error()), 0)
		return
	}
	c.team = keyTeam
	g.metrics.Ingress.WithLabelValues(c.team.Name, string(rollout.PathGateway)).Inc()
	c.rec.Team = c.team.Name
	c.rec.PostHogAPIKey, c.rec.PostHogHost = c.team.PostHogAPIKey, c.team.PostHogHost

	if op == opModels {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(c.rt.models)
		return
	}
	c.serve()
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

// readBody reads the request body up to limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	n := r.ContentLength
	if n > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	if n < 0 || n > 1<<20 {
		n = 4096
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+1))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func isTooLarge(err error) bool {
	if err == nil {
		return false
	}
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// writeLegacyError answers a legacy passthrough the legacy gateway could not serve.
func (g *Gateway) writeLegacyError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	_, rest := splitProduct(r.URL.Path)
	shape := shapeForPath(rest, r.Header)
	writeGatewayError(w, shape, errUpstream(status, "legacy_unreachable", msg), 0)
}
