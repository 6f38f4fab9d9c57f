package event_test

import (
	"testing"

	"github.com/posthog/llm-gateway/dataplane/record/internal/fixture"
)

// BenchmarkBuild: building the events of a typical call (chat, ~300-byte body, cached
// usage, costs) on the request path.
func BenchmarkBuild(b *testing.B) {
	c := fixture.Scenarios()["openai_chat_cached"]
	bl := testBuilder()
	b.ReportAllocs()
	for b.Loop() {
		bl.Build(c)
	}
}

// BenchmarkBuildFailover: a served call with one failover hop (two events).
func BenchmarkBuildFailover(b *testing.B) {
	c := fixture.Scenarios()["failover_hop"]
	bl := testBuilder()
	b.ReportAllocs()
	for b.Loop() {
		bl.Build(c)
	}
}
