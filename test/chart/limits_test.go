package chart

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The chart's default limits hold its default memory limit, by the arithmetic of
// docs/gateway.md "Memory arithmetic", and the pod learns its memory limit.
func TestChartLimitsFitTheMemoryLimit(t *testing.T) {
	d := find(t, render(t, "llm"), "Deployment", "-gateway")
	containers, _, err := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	require.NoError(t, err)
	c := containers[0].(map[string]any)
	mem, _, err := unstructured.NestedString(c, "resources", "limits", "memory")
	require.NoError(t, err)
	q := resource.MustParse(mem)
	limit := q.Value()

	flags := map[string]int64{}
	for _, a := range c["args"].([]any) {
		name, v, ok := strings.Cut(strings.TrimPrefix(a.(string), "--"), "=")
		if n, err := strconv.ParseInt(v, 10, 64); ok && err == nil {
			flags[name] = n
		}
	}
	for _, f := range []string{"max-connections", "max-header-bytes", "max-body-bytes", "max-inflight-body-bytes"} {
		require.Contains(t, flags, f)
	}
	pool := flags["max-inflight-body-bytes"]
	if pool == 0 {
		pool = limit / 8 // the gateway's default share
	}
	const (
		baseline  = 25 << 20
		perStream = 60 << 10
		copies    = 4 // reachable bytes per body byte
	)
	perConn := max(int64(perStream), flags["max-header-bytes"]+4<<10)
	need := baseline + flags["max-connections"]*perConn + copies*pool
	require.LessOrEqual(t, need, limit/10*9, "connections, bodies and baseline fit under the Go soft limit (90%% of %s)", mem)
	require.LessOrEqual(t, flags["max-body-bytes"], pool, "a body of the largest size can be admitted")

	var wired bool
	for _, e := range c["env"].([]any) {
		env := e.(map[string]any)
		if env["name"] == "LLM_GATEWAY_MEMORY_LIMIT_BYTES" {
			res, _, _ := unstructured.NestedString(env, "valueFrom", "resourceFieldRef", "resource")
			name, _, _ := unstructured.NestedString(env, "valueFrom", "resourceFieldRef", "containerName")
			wired = res == "limits.memory" && name == c["name"]
		}
	}
	require.True(t, wired, "the gateway gets its memory limit from the downward API")
}
