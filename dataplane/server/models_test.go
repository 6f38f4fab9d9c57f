package server

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// playgroundSnapshot adds to the base snapshot what the model list has to describe: an alias,
// Bedrock and Azure failover targets with modelMaps, a weighted priority group, per-backend
// price overrides, a model only an override prices, a model nothing prices, route limits and a
// failover policy.
func playgroundSnapshot(s *snapshot.Snapshot) {
	c := s.Backends[2].Endpoint
	a := s.Backends[0].Endpoint
	s.Backends = append(s.Backends,
		snapshot.Backend{Name: "ns/bedrock", Provider: snapshot.ProviderBedrock, Endpoint: c, Region: "us-east-1",
			Credentials: snapshot.Credentials{AWSAccessKeyID: "AKIAMODELS", AWSSecretAccessKey: "secret"},
			ModelMap:    map[string]string{"house-sonnet": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
			Prices:      []snapshot.ModelPrice{{Model: "claude-opus-5", InputPerMTok: 5_500_000, OutputPerMTok: 27_500_000}}},
		snapshot.Backend{Name: "ns/azure", Provider: snapshot.ProviderAzureOpenAI, Endpoint: a, AzureAPIVersion: "2024-10-21",
			Credentials: snapshot.Credentials{APIKey: "up-key-azure"}, ModelMap: map[string]string{"gpt-4o": "prod-gpt4o"},
			Prices: []snapshot.ModelPrice{{Model: "gpt-4o", InputPerMTok: 2_750_000, OutputPerMTok: 11_000_000}}},
	)
	gpt := &s.Routes[0]
	gpt.Models = []string{"gpt-4o", "o1-pro", "text-embedding-3-small"}
	gpt.Aliases = map[string]string{"default-chat": "gpt-4o"}
	gpt.Prefixes = []string{"ft:"}
	gpt.Backends = []snapshot.RouteBackend{{Backend: "ns/openai-a", Priority: 0, Weight: 3}, {Backend: "ns/openai-b", Priority: 0, Weight: 1},
		{Backend: "ns/azure", Priority: 1, Weight: 1}}
	gpt.Failover = snapshot.Failover{On: []string{snapshot.FailoverServerError, snapshot.FailoverTimeout}, MaxAttempts: 2, PerTryTimeoutMs: 30_000}
	claude := &s.Routes[1]
	claude.Models = []string{"claude-sonnet-4-5", "claude-opus-5", "house-sonnet", "made-up-model"}
	claude.Aliases = map[string]string{"claude-sonnet": "claude-sonnet-4-5"}
	claude.Backends = []snapshot.RouteBackend{{Backend: "ns/anthropic", Priority: 0, Weight: 1}, {Backend: "ns/bedrock", Priority: 1, Weight: 1}}
	claude.Limits.MaxMaxTokens = 32_000
}

func modelsBodyOf(t *testing.T, e *env) []byte {
	t.Helper()
	resp := e.do("GET", "/v1/models", keyAlpha, "")
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	return []byte(body)
}

// TestModelsListGolden compares the whole GET /v1/models body with testdata/models.golden.json
// (run with -update to rewrite it, then review the diff).
func TestModelsListGolden(t *testing.T) {
	e := newEnv(t, playgroundSnapshot)
	body := modelsBodyOf(t, e)
	require.Equal(t, e.g.Runtime().models, body, "the body is the one rendered when the snapshot was applied")
	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, body, "", "  "))
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", "models.golden.json")
	if *update {
		require.NoError(t, os.WriteFile(path, pretty.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./dataplane/server -run TestModelsListGolden -update")
	require.Equal(t, string(want), pretty.String(), "golden %s differs; run with -update and review the diff", path)
}

// TestModelsListDescribesRoutes checks the facts the golden file holds, one by one, so that a
// careless -update cannot hide a regression.
func TestModelsListDescribesRoutes(t *testing.T) {
	e := newEnv(t, playgroundSnapshot)
	body := modelsBodyOf(t, e)
	model := func(id string) gjson.Result {
		t.Helper()
		m := gjson.GetBytes(body, `data.#(id=="`+id+`")`)
		require.True(t, m.Exists(), id)
		return m
	}
	ids := gjson.GetBytes(body, "data.#.id").Array()
	var names []string
	for _, id := range ids {
		names = append(names, id.Str)
	}
	require.Equal(t, []string{"default-chat", "gpt-4o", "o1-pro", "text-embedding-3-small",
		"claude-opus-5", "claude-sonnet", "claude-sonnet-4-5", "house-sonnet", "made-up-model"}, names,
		"OpenAI shape first, then Anthropic, each sorted; prefixes cannot be listed")
	require.Equal(t, "default-chat", gjson.GetBytes(body, "first_id").Str)
	require.Equal(t, "made-up-model", gjson.GetBytes(body, "last_id").Str)
	require.False(t, gjson.GetBytes(body, "has_more").Bool())

	t.Run("catalog description", func(t *testing.T) {
		m := model("claude-sonnet-4-5")
		require.Equal(t, "anthropic", m.Get("provider").Str)
		require.Equal(t, "anthropic", m.Get("owned_by").Str)
		require.Equal(t, "chat", m.Get("mode").Str)
		require.Equal(t, int64(200_000), m.Get("context_window").Int())
		require.Equal(t, int64(200_000), m.Get("max_input_tokens").Int())
		require.Equal(t, int64(64_000), m.Get("max_output_tokens").Int())
		require.Equal(t, int64(32_000), m.Get("max_tokens").Int(), "the route clamps max_tokens at 32,000")
		require.JSONEq(t, `{"input":3,"output":15,"cache_read":0.3,"cache_write_5m":3.75,"cache_write_1h":6,
			"long_context":{"above_tokens":200000,"input":6,"output":22.5,"cache_read":0.6,"cache_write_5m":7.5,"cache_write_1h":12}}`, m.Get("pricing").Raw)
		require.JSONEq(t, `{"streaming":{"supported":true},"tools":{"supported":true},"image_input":{"supported":true},
			"structured_outputs":{"supported":true},"thinking":{"supported":true},"prompt_caching":{"supported":true}}`, m.Get("capabilities").Raw)

		g := model("gpt-4o")
		require.False(t, g.Get("capabilities.thinking.supported").Bool(), "gpt-4o does not reason")
		require.True(t, g.Get("capabilities.image_input.supported").Bool())
		require.Equal(t, int64(16_384), g.Get("max_tokens").Int(), "no route limit: the catalog's max output")
		require.False(t, model("o1-pro").Get("capabilities.streaming.supported").Bool(), "supports_native_streaming: false")
		require.False(t, model("text-embedding-3-small").Get("capabilities.streaming.supported").Bool())

		u := model("made-up-model")
		require.Equal(t, "llm-gateway", u.Get("owned_by").Str)
		for _, f := range []string{"provider", "pricing", "capabilities", "context_window", "max_input_tokens"} {
			require.False(t, u.Get(f).Exists(), "an unknown model has no %s", f)
		}
		require.Equal(t, int64(32_000), u.Get("max_tokens").Int(), "the route's limit still holds")
		require.False(t, u.Get("priced").Bool())
	})

	t.Run("alias", func(t *testing.T) {
		a, m := model("claude-sonnet"), model("claude-sonnet-4-5")
		require.Equal(t, "claude-sonnet-4-5", a.Get("alias_of").Str)
		require.False(t, m.Get("alias_of").Exists())
		require.Equal(t, m.Get("pricing").Raw, a.Get("pricing").Raw, "an alias is described by its target")
		require.Equal(t, m.Get("backends").Raw, a.Get("backends").Raw)
	})

	t.Run("backends in failover order", func(t *testing.T) {
		m := model("claude-sonnet-4-5")
		require.Equal(t, "ns/claude", m.Get("route").Str)
		require.JSONEq(t, `["anthropic","bedrock"]`, m.Get("providers").Raw)
		require.JSONEq(t, `{"name":"ns/anthropic","provider":"anthropic","priority":0,"weight":1,"upstream_model":"claude-sonnet-4-5",
			"pricing":{"input":3,"output":15,"cache_read":0.3,"cache_write_5m":3.75,"cache_write_1h":6,
			"long_context":{"above_tokens":200000,"input":6,"output":22.5,"cache_read":0.6,"cache_write_5m":7.5,"cache_write_1h":12}},
			"price_source":"litellm:anthropic"}`, m.Get("backends.0").Raw)
		b := m.Get("backends.1")
		require.Equal(t, "ns/bedrock", b.Get("name").Str)
		require.Equal(t, "bedrock", b.Get("provider").Str)
		require.Equal(t, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", b.Get("upstream_model").Str, "the us-east-1 inference profile")
		require.Equal(t, 3.3, b.Get("pricing.input").Float(), "the geo profile's price, 10% above the direct one")
		require.True(t, m.Get("priced").Bool())
		require.JSONEq(t, `{"on":["ConnectionError","NotFound","Overloaded","QuotaExhausted","RateLimited","ServerError","Timeout","UpstreamAuth"],
			"max_attempts":2,"targets":["ns/bedrock"]}`, m.Get("failover").Raw)

		h := model("house-sonnet")
		require.Equal(t, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", h.Get("backends.1.upstream_model").Str, "from the modelMap")
		require.Equal(t, 3.3, h.Get("backends.1.pricing.input").Float(), "priced by the upstream model id")
		require.Equal(t, "null", h.Get("backends.0.pricing").Raw, "Anthropic does not know the name: unpriced there")
		require.False(t, h.Get("priced").Bool())
		require.Equal(t, "anthropic", h.Get("provider").Str, "described by the model the modelMap names")
		require.Equal(t, int64(200_000), h.Get("context_window").Int())
		require.True(t, h.Get("capabilities.thinking.supported").Bool())

		o := model("claude-opus-5")
		require.Equal(t, "null", o.Get("backends.0.pricing").Raw)
		require.Equal(t, 5.5, o.Get("backends.1.pricing.input").Float())
		require.Equal(t, "override:ns/bedrock", o.Get("backends.1.price_source").Str)
		require.Equal(t, 5.5, o.Get("pricing.input").Float(), "described from the override")

		g := model("gpt-4o")
		require.JSONEq(t, `["openai","azure"]`, g.Get("providers").Raw)
		var order []string
		for _, b := range g.Get("backends").Array() {
			order = append(order, fmt.Sprintf("%s p%d w%d %s", b.Get("name").Str, b.Get("priority").Int(), b.Get("weight").Int(), b.Get("upstream_model").Str))
		}
		require.Equal(t, []string{"ns/openai-a p0 w3 gpt-4o", "ns/openai-b p0 w1 gpt-4o", "ns/azure p1 w1 prod-gpt4o"}, order)
		require.Equal(t, 2.75, g.Get("backends.2.pricing.input").Float(), "the Azure backend's override")
		require.Equal(t, 2.5, g.Get("backends.0.pricing.input").Float())
		require.JSONEq(t, `{"on":["ServerError","Timeout"],"max_attempts":2,"per_try_timeout_ms":30000,"targets":["ns/azure"]}`, g.Get("failover").Raw)
	})
}

// TestModelsListBuiltPerSnapshot: the body is rendered when a snapshot is applied, not per
// request: serving it costs the same for 2 models as for 200, and a new snapshot brings a new body.
func TestModelsListBuiltPerSnapshot(t *testing.T) {
	e := newEnv(t, nil)
	allocs := func() float64 {
		return testing.AllocsPerRun(50, func() {
			req := httptest.NewRequest(http.MethodGet, "/v1/models", nil)
			req.Header.Set("Authorization", "Bearer "+keyAlpha)
			w := httptest.NewRecorder()
			e.g.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
		})
	}
	few := allocs()
	before := e.g.Runtime().models
	e.apply(func(s *snapshot.Snapshot) {
		for i := range 200 {
			s.Routes[0].Models = append(s.Routes[0].Models, fmt.Sprintf("gpt-4o-extra-%03d", i))
		}
	})
	require.NotEqual(t, before, e.g.Runtime().models)
	require.Len(t, gjson.GetBytes(modelsBodyOf(t, e), "data").Array(), 202)
	many := allocs()
	require.LessOrEqual(t, many, few+10, "allocations per request must not grow with the number of models (%v vs %v)", many, few)
}
