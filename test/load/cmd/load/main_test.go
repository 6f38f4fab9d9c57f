package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/test/load"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, c load.Config, build bool)
	}{
		{"defaults are the standard set", nil, func(t *testing.T, c load.Config, build bool) {
			require.Equal(t, load.DefaultConfig(), c)
			require.False(t, build)
		}},
		{"quick swaps the defaults, later flags still apply", []string{"-quick", "-repeat", "2", "-build"}, func(t *testing.T, c load.Config, build bool) {
			want := load.QuickConfig()
			want.Repeat = 2
			require.Equal(t, want, c)
			require.True(t, build)
		}},
		{"lists and durations", []string{"-rates", "100, 250.5", "-concurrency", "2,4", "-rate-duration", "1s", "-scenarios", "rate,streams", "-shape", "anthropic",
			"-gateway-env", "GOGC=800", "-gateway-env", "GOMEMLIMIT=1GiB"},
			func(t *testing.T, c load.Config, _ bool) {
				require.Equal(t, []float64{100, 250.5}, c.Rates)
				require.Equal(t, []int{2, 4}, c.Concurrency)
				require.Equal(t, time.Second, c.RateDuration)
				require.Equal(t, []string{"rate", "streams"}, c.Scenarios)
				require.Equal(t, "anthropic", c.Shape)
				require.Equal(t, []string{"GOGC=800", "GOMEMLIMIT=1GiB"}, c.GatewayEnv)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, build, err := parseFlags(tc.args)
			require.NoError(t, err)
			tc.check(t, c, build)
		})
	}
}

func TestParseFlagsRejects(t *testing.T) {
	for _, args := range [][]string{
		{"-rates", "fast"},
		{"-rates", "-5"},
		{"-concurrency", "0"},
		{"-gateway-env", "GOGC"},
		{"-no-such-flag"},
		{"extra"},
	} {
		_, _, err := parseFlags(args)
		require.Error(t, err, "%v", args)
	}
}
