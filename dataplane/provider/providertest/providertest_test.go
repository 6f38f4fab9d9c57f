package providertest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRead(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		want      View
		ambiguous int
	}{
		{name: "ordinary", body: `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"n":2,"max_tokens":10}`,
			want: View{Model: "gpt-4o", Stream: true, IncludeUsage: true, N: 2, Limits: map[string]int64{"max_tokens": 10}}},
		{name: "last member wins", body: `{"model":"cheap","stream":false,"max_tokens":1,"model":"dear","stream":true,"max_tokens":64000}`,
			want: View{Model: "dear", Stream: true, N: 1, Limits: map[string]int64{"max_tokens": 64000}}},
		{name: "escaped names are the same member", body: `{"model":"cheap","m\u006fdel":"dear"}`,
			want: View{Model: "dear", N: 1, Limits: map[string]int64{}}},
		{name: "names are case-sensitive", body: `{"Model":"dear","model":"cheap"}`,
			want: View{Model: "cheap", N: 1, Limits: map[string]int64{}}},
		{name: "null is absent", body: `{"model":"m","stream":null,"n":null,"max_output_tokens":null}`,
			want: View{Model: "m", N: 1, Limits: map[string]int64{}}},
		{name: "nested duplicate", body: `{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_usage":false}}`,
			want: View{Model: "m", Stream: true, N: 1, Limits: map[string]int64{}}},
		{name: "sticky and cache", body: `{"model":"m","previous_response_id":"resp_1","tools":[{"cache_control":{"ttl":"1h"}}]}`,
			want: View{Model: "m", N: 1, Limits: map[string]int64{}, Sticky: "previous_response_id", CacheWrite: true, CacheWrite1h: true}},
		{name: "coercible values are ambiguous", body: `{"model":1,"stream":1,"n":"2","max_tokens":100.0,"max_completion_tokens":1e3,"stream_options":{"include_usage":"yes"}}`,
			want: View{N: 1, Limits: map[string]int64{}}, ambiguous: 6},
		{name: "n below one", body: `{"model":"m","n":0}`, want: View{Model: "m", N: 1, Limits: map[string]int64{}}, ambiguous: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Read([]byte(tt.body))
			require.NoError(t, err)
			require.Len(t, v.Ambiguous, tt.ambiguous, "%v", v.Ambiguous)
			require.Len(t, v.AmbiguousFor("model", "stream", "stream_options.include_usage", "n", "max_tokens", "max_completion_tokens"), tt.ambiguous)
			v.Ambiguous, v.Top = nil, nil
			require.Equal(t, tt.want, *v)
		})
	}
}

func TestReadRejects(t *testing.T) {
	for _, b := range []string{``, `null`, `[]`, `{"model":"m"} {}`, `{"model":"m"`, `"x"`} {
		_, err := Read([]byte(b))
		require.Error(t, err, b)
	}
}

func TestAmbiguousFor(t *testing.T) {
	v, err := Read([]byte(`{"model":"m","n":"2","stream":1}`))
	require.NoError(t, err)
	require.Equal(t, []string{"n: string 2", "stream: json.Number 1"}, v.AmbiguousFor("stream", "n"))
	require.Equal(t, []string{"stream: json.Number 1"}, v.AmbiguousFor("model", "stream", "max_output_tokens"))
	require.Empty(t, v.AmbiguousFor("model"))
}

func TestOutputLimit(t *testing.T) {
	v, err := Read([]byte(`{"max_tokens":10,"max_completion_tokens":20}`))
	require.NoError(t, err)
	limit, set := v.OutputLimit("max_completion_tokens", "max_tokens")
	require.Equal(t, int64(20), limit)
	require.Equal(t, 2, set)
	limit, set = v.OutputLimit("max_output_tokens")
	require.Zero(t, limit)
	require.Zero(t, set)
}
