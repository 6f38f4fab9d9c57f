package route

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

func testSnapshot() *snapshot.Snapshot {
	return &snapshot.Snapshot{Routes: []snapshot.Route{
		{
			Name:  "ns/claude",
			Shape: snapshot.ShapeAnthropic,
			Models: []string{"claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20241022", "claude-haiku-4-5-20251001",
				"claude-opus-4-6", "claude-sonnet-4-5"},
			Aliases: map[string]string{"claude-sonnet": "claude-sonnet-4-5", "fast": "claude-haiku-4-5-20251001"},
		},
		{
			Name:    "ns/gpt",
			Shape:   snapshot.ShapeOpenAI,
			Models:  []string{"gpt-3.5-turbo", "gpt-4o", "gpt-4o-mini-2024-07-18", "o3"},
			Aliases: map[string]string{"default": "gpt-4o"},
		},
		{
			Name:     "ns/fine-tunes",
			Shape:    snapshot.ShapeOpenAI,
			Prefixes: []string{"ft:"},
		},
	}}
}

func TestResolve(t *testing.T) {
	tbl := New(testSnapshot(), nil)
	A, O := snapshot.ShapeAnthropic, snapshot.ShapeOpenAI
	for _, tc := range []struct {
		shape     snapshot.Shape
		requested string
		route     string
		canonical string
		served    string
		by        MatchKind
	}{
		// Anthropic shape.
		{A, "claude-sonnet-4-5", "ns/claude", "claude-sonnet-4-5", "claude-sonnet-4-5", ByExact},
		{A, "claude-sonnet", "ns/claude", "claude-sonnet-4-5", "claude-sonnet", ByAlias},
		{A, "fast", "ns/claude", "claude-haiku-4-5-20251001", "fast", ByAlias},
		{A, "anthropic/claude-sonnet-4-5", "ns/claude", "claude-sonnet-4-5", "claude-sonnet-4-5", ByNormalized},
		{A, "anthropic/claude-sonnet-4.5", "ns/claude", "claude-sonnet-4-5", "claude-sonnet-4-5", ByNormalized},
		{A, "claude-sonnet-4.5", "ns/claude", "claude-sonnet-4-5", "claude-sonnet-4-5", ByNormalized},
		{A, "Claude-Sonnet-4-5", "ns/claude", "claude-sonnet-4-5", "claude-sonnet-4-5", ByNormalized},
		{A, " claude-sonnet-4-5 ", "ns/claude", "claude-sonnet-4-5", "claude-sonnet-4-5", ByNormalized},
		{A, "anthropic/claude-sonnet", "ns/claude", "claude-sonnet-4-5", "claude-sonnet", ByNormalized},
		// A dated name under an undated route model: the dated, catalog-known name is served.
		{A, "claude-sonnet-4-5-20250929", "ns/claude", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", ByUndated},
		{A, "claude-sonnet-4-5@20250929", "ns/claude", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", ByUndated},
		{A, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "ns/claude", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", ByUndated},
		{A, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0", "ns/claude", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", ByUndated},
		{A, "bedrock/converse/eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "ns/claude", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", ByUndated},
		// Unknown to the catalog: the route's own name.
		{A, "claude-sonnet-4-5-20991231", "ns/claude", "claude-sonnet-4-5", "claude-sonnet-4-5", ByUndated},
		{A, "claude-sonnet-4-5-latest", "ns/claude", "claude-sonnet-4-5", "claude-sonnet-4-5", ByUndated},
		// Undated / -latest names of a family the route serves dated: the newest dated model.
		{A, "claude-3-5-sonnet-latest", "ns/claude", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20241022", ByFamily},
		{A, "claude-3-5-sonnet", "ns/claude", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20241022", ByFamily},
		{A, "anthropic/claude-3.5-sonnet", "ns/claude", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20241022", ByFamily},
		{A, "claude-haiku-4-5", "ns/claude", "claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", ByFamily},
		{A, "anthropic/claude-haiku-4.5", "ns/claude", "claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", ByFamily},
		// Bedrock ids of models the route lists.
		{A, "anthropic.claude-haiku-4-5-20251001-v1:0", "ns/claude", "claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", ByNormalized},
		{A, "us.anthropic.claude-opus-4-6-v1", "ns/claude", "claude-opus-4-6", "claude-opus-4-6", ByNormalized},
		{A, "apac.anthropic.claude-3-5-sonnet-20240620-v1:0", "ns/claude", "claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20240620", ByNormalized},
		{A, "claude-3-5-sonnet-20240620", "ns/claude", "claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20240620", ByExact},

		// OpenAI shape.
		{O, "gpt-4o", "ns/gpt", "gpt-4o", "gpt-4o", ByExact},
		{O, "default", "ns/gpt", "gpt-4o", "default", ByAlias},
		{O, "gpt-4o-2024-08-06", "ns/gpt", "gpt-4o-2024-08-06", "gpt-4o", ByUndated},
		{O, "gpt-4o-2024-05-13", "ns/gpt", "gpt-4o-2024-05-13", "gpt-4o", ByUndated}, // priced at its own $5
		{O, "gpt-4o-2099-01-01", "ns/gpt", "gpt-4o", "gpt-4o", ByUndated},
		{O, "o3-2025-04-16", "ns/gpt", "o3-2025-04-16", "o3", ByUndated},
		{O, "openai/gpt-4o", "ns/gpt", "gpt-4o", "gpt-4o", ByNormalized},
		{O, "azure/gpt-4o", "ns/gpt", "gpt-4o", "gpt-4o", ByNormalized},
		{O, "openai/gpt-4o-2024-08-06", "ns/gpt", "gpt-4o-2024-08-06", "gpt-4o", ByUndated},
		{O, "gpt-35-turbo", "ns/gpt", "gpt-3.5-turbo", "gpt-3.5-turbo", ByNormalized},
		{O, "gpt-3.5-turbo-0125", "ns/gpt", "gpt-3.5-turbo-0125", "gpt-3.5-turbo", ByUndated},
		{O, "gpt-4o-mini", "ns/gpt", "gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18", ByFamily},
		{O, "~openai/gpt-4o-mini", "ns/gpt", "gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18", ByFamily},
		{O, "ft:gpt-4o-mini-2024-07-18:my-org::9AbCdEf", "ns/fine-tunes", "ft:gpt-4o-mini-2024-07-18:my-org::9AbCdEf", "ft:", ByPrefix},
	} {
		t.Run(string(tc.shape)+"/"+tc.requested, func(t *testing.T) {
			m, err := tbl.Resolve(tc.shape, tc.requested)
			require.NoError(t, err)
			require.Equal(t, tc.route, m.Route.Name)
			require.Equal(t, tc.canonical, m.Canonical)
			require.Equal(t, tc.requested, m.Requested, "requested is kept verbatim")
			require.Equal(t, tc.served, m.Served)
			require.Equal(t, tc.by, m.By)
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tbl := New(testSnapshot(), nil)
	for _, tc := range []struct {
		shape     snapshot.Shape
		requested string
		servedOn  snapshot.Shape
		message   string
	}{
		{snapshot.ShapeOpenAI, "claude-sonnet-4-5", snapshot.ShapeAnthropic, `model "claude-sonnet-4-5" is served on /v1/messages, not on this endpoint`},
		{snapshot.ShapeOpenAI, "anthropic/claude-sonnet-4.5", snapshot.ShapeAnthropic, `model "anthropic/claude-sonnet-4.5" is served on /v1/messages, not on this endpoint`},
		{snapshot.ShapeAnthropic, "gpt-4o", snapshot.ShapeOpenAI, `model "gpt-4o" is served on /v1/chat/completions and /v1/responses, not on this endpoint`},
		{snapshot.ShapeAnthropic, "default", snapshot.ShapeOpenAI, `model "default" is served on /v1/chat/completions and /v1/responses, not on this endpoint`},
		{snapshot.ShapeAnthropic, "claude-2.1", "", `model "claude-2.1" is not served by this gateway`},
		// A dated name is never moved to another date of the family.
		{snapshot.ShapeAnthropic, "claude-3-5-sonnet-20990101", "", `model "claude-3-5-sonnet-20990101" is not served by this gateway`},
		{snapshot.ShapeOpenAI, "gpt-4", "", `model "gpt-4" is not served by this gateway`},
		{snapshot.ShapeOpenAI, "llama-3.1-70b", "", `model "llama-3.1-70b" is not served by this gateway`},
		{snapshot.ShapeOpenAI, "", "", "the request names no model"},
		{snapshot.ShapeOpenAI, "   ", "", "the request names no model"},
		{snapshot.Shape("Gemini"), "gpt-4o", "", `model "gpt-4o" is not served by this gateway`},
	} {
		t.Run(tc.requested, func(t *testing.T) {
			_, err := tbl.Resolve(tc.shape, tc.requested)
			require.ErrorIs(t, err, ErrNoRoute)
			var nr *NoRouteError
			require.True(t, errors.As(err, &nr))
			require.Equal(t, tc.requested, nr.Model)
			require.Equal(t, tc.servedOn, nr.ServedOn)
			require.Equal(t, tc.message, err.Error())
		})
	}

	long := strings.Repeat("x", 10_000)
	_, err := tbl.Resolve(snapshot.ShapeOpenAI, long)
	require.Less(t, len(err.Error()), 300, "a huge model name is not echoed whole")
}

func TestResolvePrefixes(t *testing.T) {
	tbl := New(&snapshot.Snapshot{Routes: []snapshot.Route{
		{Name: "ns/a-claude", Shape: snapshot.ShapeAnthropic, Prefixes: []string{"claude-"}},
		{Name: "ns/b-claude3", Shape: snapshot.ShapeAnthropic, Prefixes: []string{"claude-3-"}},
		{Name: "ns/c-gpt", Shape: snapshot.ShapeOpenAI, Prefixes: []string{"gpt-", "o"}},
	}}, nil)
	for _, tc := range []struct {
		shape                       snapshot.Shape
		requested, route, canonical string
	}{
		{snapshot.ShapeAnthropic, "claude-3-opus-20240229", "ns/b-claude3", "claude-3-opus-20240229"}, // longest prefix wins
		{snapshot.ShapeAnthropic, "claude-sonnet-4-5", "ns/a-claude", "claude-sonnet-4-5"},
		{snapshot.ShapeAnthropic, "claude-3-5-sonnet-latest", "ns/b-claude3", "claude-3-5-sonnet-latest"}, // the upstream resolves -latest
		{snapshot.ShapeAnthropic, "anthropic/claude-sonnet-4.5", "ns/a-claude", "claude-sonnet-4-5"},
		{snapshot.ShapeAnthropic, "global.anthropic.claude-sonnet-4-6", "ns/a-claude", "claude-sonnet-4-6"},
		{snapshot.ShapeOpenAI, "gpt-4o-2024-08-06", "ns/c-gpt", "gpt-4o-2024-08-06"},
		{snapshot.ShapeOpenAI, "openai/o4-mini", "ns/c-gpt", "o4-mini"},
		{snapshot.ShapeOpenAI, "GPT-4o", "ns/c-gpt", "gpt-4o"},
	} {
		m, err := tbl.Resolve(tc.shape, tc.requested)
		require.NoError(t, err, tc.requested)
		require.Equal(t, tc.route, m.Route.Name, tc.requested)
		require.Equal(t, tc.canonical, m.Canonical, tc.requested)
		require.Equal(t, ByPrefix, m.By, tc.requested)
	}
	_, err := tbl.Resolve(snapshot.ShapeOpenAI, "claude-sonnet-4-5")
	require.ErrorIs(t, err, ErrNoRoute)
	require.Contains(t, err.Error(), "/v1/messages")
}

// The issue's required examples route whenever a route serves the family.
func TestResolveIssueExamples(t *testing.T) {
	for _, tc := range []struct {
		name   string
		routes []snapshot.Route
	}{
		{"dated models", []snapshot.Route{
			{Name: "a", Shape: snapshot.ShapeAnthropic, Models: []string{"claude-3-5-sonnet-20241022", "claude-sonnet-4-5-20250929"}},
			{Name: "o", Shape: snapshot.ShapeOpenAI, Models: []string{"gpt-4o-2024-11-20", "gpt-4o-2024-08-06"}},
		}},
		{"undated models", []snapshot.Route{
			{Name: "a", Shape: snapshot.ShapeAnthropic, Models: []string{"claude-3-5-sonnet-20241022", "claude-sonnet-4-5"}},
			{Name: "o", Shape: snapshot.ShapeOpenAI, Models: []string{"gpt-4o"}},
		}},
		{"prefixes", []snapshot.Route{
			{Name: "a", Shape: snapshot.ShapeAnthropic, Prefixes: []string{"claude-"}},
			{Name: "o", Shape: snapshot.ShapeOpenAI, Prefixes: []string{"gpt-"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := New(&snapshot.Snapshot{Routes: tc.routes}, nil)
			for _, q := range []struct {
				shape snapshot.Shape
				model string
			}{
				{snapshot.ShapeAnthropic, "claude-3-5-sonnet-latest"},
				{snapshot.ShapeAnthropic, "anthropic/claude-sonnet-4-5"},
				{snapshot.ShapeOpenAI, "gpt-4o-2024-08-06"},
			} {
				m, err := tbl.Resolve(q.shape, q.model)
				require.NoError(t, err, q.model)
				require.NotEmpty(t, m.Canonical)
				if tc.name != "prefixes" {
					require.True(t, catalog.Default().Known(q.shape, m.Canonical), "%s resolves to %s, a catalog model", q.model, m.Canonical)
				}
			}
		})
	}
}

// A backend modelMap entry for the route's own name is honoured: the dated request keeps the
// route's name as Canonical so the adapter finds the operator's mapping.
func TestResolveKeepsModelMapName(t *testing.T) {
	s := &snapshot.Snapshot{
		Backends: []snapshot.Backend{
			{Name: "ns/anthropic", Provider: snapshot.ProviderAnthropic},
			{Name: "ns/bedrock", Provider: snapshot.ProviderBedrock, ModelMap: map[string]string{
				"claude-sonnet-4-5":        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc",
				"claude-opus-4-5":          "us.anthropic.claude-opus-4-5-20251101-v1:0",
				"claude-opus-4-5-20251101": "global.anthropic.claude-opus-4-5-20251101-v1:0",
			}},
		},
		Routes: []snapshot.Route{{Name: "ns/claude", Shape: snapshot.ShapeAnthropic,
			Models:   []string{"claude-opus-4-5", "claude-sonnet-4-5", "claude-sonnet-4-6"},
			Backends: []snapshot.RouteBackend{{Backend: "ns/anthropic"}, {Backend: "ns/bedrock", Priority: 1}}}},
	}
	tbl := New(s, nil)
	for requested, canonical := range map[string]string{
		"claude-sonnet-4-5-20250929": "claude-sonnet-4-5",        // mapped undated only
		"claude-opus-4-5-20251101":   "claude-opus-4-5-20251101", // the dated name is mapped too
		"claude-sonnet-4-6-20990101": "claude-sonnet-4-6",        // unknown date
	} {
		m, err := tbl.Resolve(snapshot.ShapeAnthropic, requested)
		require.NoError(t, err, requested)
		require.Equal(t, canonical, m.Canonical, requested)
		require.Equal(t, ByUndated, m.By)
	}
}

func TestModels(t *testing.T) {
	tbl := New(testSnapshot(), nil)
	require.Equal(t, []string{"claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20241022", "claude-haiku-4-5-20251001",
		"claude-opus-4-6", "claude-sonnet", "claude-sonnet-4-5", "default", "fast", "gpt-3.5-turbo", "gpt-4o",
		"gpt-4o-mini-2024-07-18", "o3"}, tbl.Models())
	require.Equal(t, []string{"default", "gpt-3.5-turbo", "gpt-4o", "gpt-4o-mini-2024-07-18", "o3"}, tbl.ModelsOf(snapshot.ShapeOpenAI))
	require.Nil(t, tbl.ModelsOf(snapshot.Shape("x")))
	ms := tbl.Models()
	ms[0] = "mutated"
	require.NotEqual(t, "mutated", tbl.Models()[0], "callers get a copy")

	c, ok := tbl.Target(snapshot.ShapeAnthropic, "claude-sonnet")
	require.True(t, ok)
	require.Equal(t, "claude-sonnet-4-5", c)
	c, ok = tbl.Target(snapshot.ShapeOpenAI, "gpt-4o")
	require.True(t, ok)
	require.Equal(t, "gpt-4o", c)
	_, ok = tbl.Target(snapshot.ShapeOpenAI, "claude-sonnet")
	require.False(t, ok)
	_, ok = tbl.Target(snapshot.Shape("x"), "gpt-4o")
	require.False(t, ok)

	empty := New(nil, nil)
	require.Empty(t, empty.Models())
	_, err := empty.Resolve(snapshot.ShapeOpenAI, "gpt-4o")
	require.ErrorIs(t, err, ErrNoRoute)
}

// Resolve keeps pointers to the snapshot's routes, so the Match names the route config.
func TestMatchPointsIntoSnapshot(t *testing.T) {
	s := testSnapshot()
	tbl := New(s, nil)
	m, err := tbl.Resolve(snapshot.ShapeOpenAI, "gpt-4o")
	require.NoError(t, err)
	require.Same(t, &s.Routes[1], m.Route)
}

func TestResolveExactDoesNotAllocate(t *testing.T) {
	tbl := New(testSnapshot(), nil)
	for _, model := range []string{"claude-sonnet-4-5", "claude-sonnet"} {
		allocs := testing.AllocsPerRun(200, func() {
			if _, err := tbl.Resolve(snapshot.ShapeAnthropic, model); err != nil {
				t.Fatal(err)
			}
		})
		require.Zero(t, allocs, model)
	}
}

func FuzzResolve(f *testing.F) {
	tbl := New(testSnapshot(), nil)
	for _, s := range []string{"claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "arn:aws:bedrock:x:y:z/",
		"anthropic/", "gpt-4o-2024-08-06", "~openai/gpt-4o-mini", "ft:", "claude-3.5-sonnet-latest", "-latest", "\x00", "azure//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, requested string) {
		for _, shape := range []snapshot.Shape{snapshot.ShapeOpenAI, snapshot.ShapeAnthropic} {
			m, err := tbl.Resolve(shape, requested)
			if err != nil {
				require.ErrorIs(t, err, ErrNoRoute)
				require.NotEmpty(t, err.Error())
				require.Nil(t, m.Route)
				continue
			}
			require.NotNil(t, m.Route)
			require.Equal(t, shape, m.Route.Shape)
			require.Equal(t, requested, m.Requested)
			require.NotEmpty(t, m.Canonical)
		}
	})
}

func BenchmarkResolve(b *testing.B) {
	tbl := New(testSnapshot(), nil)
	for _, bc := range []struct {
		name, model string
		shape       snapshot.Shape
	}{
		{"exact", "claude-sonnet-4-5", snapshot.ShapeAnthropic},
		{"alias", "claude-sonnet", snapshot.ShapeAnthropic},
		{"provider-prefixed", "anthropic/claude-sonnet-4-5", snapshot.ShapeAnthropic},
		{"bedrock-id", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", snapshot.ShapeAnthropic},
		{"family-latest", "claude-3-5-sonnet-latest", snapshot.ShapeAnthropic},
		{"dated-openai", "gpt-4o-2024-08-06", snapshot.ShapeOpenAI},
		{"route-prefix", "ft:gpt-4o-mini-2024-07-18:org::x", snapshot.ShapeOpenAI},
		{"miss", "llama-3.1-70b", snapshot.ShapeOpenAI},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = tbl.Resolve(bc.shape, bc.model)
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	s := testSnapshot()
	cat := catalog.Default()
	b.ReportAllocs()
	for b.Loop() {
		_ = New(s, cat)
	}
}
