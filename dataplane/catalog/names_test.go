package catalog

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCanonicalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"claude-sonnet-4-5", "claude-sonnet-4-5"},
		{"  gpt-4o ", "gpt-4o"},
		{"anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"},
		{"anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"},
		{"~anthropic/claude-sonnet-latest", "claude-sonnet-latest"},
		{"anthropic/claude-3.5-sonnet", "claude-3-5-sonnet"},
		{"claude-3.7-sonnet", "claude-3-7-sonnet"},
		{"openai/gpt-4o-2024-08-06", "gpt-4o-2024-08-06"},
		{"openai/gpt-4.1-mini", "gpt-4.1-mini"}, // OpenAI keeps its dots
		{"gpt-5.1", "gpt-5.1"},
		{"azure/gpt-4o", "gpt-4o"},
		{"azure/eu/gpt-4o-2024-08-06", "gpt-4o-2024-08-06"},
		{"azure/global-standard/gpt-4o-mini", "gpt-4o-mini"},
		{"gpt-35-turbo", "gpt-3.5-turbo"},
		{"azure/gpt-35-turbo-16k", "gpt-3.5-turbo-16k"},
		{"anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"},
		{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"},
		{"global.anthropic.claude-sonnet-4-6", "claude-sonnet-4-6"},
		{"eu.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"},
		{"us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"},
		{"anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet-20241022"},
		{"bedrock/anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku-20240307"},
		{"bedrock/converse/us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5-20251001"},
		{"bedrock/us-gov-west-1/anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4-20250514"},
		{"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku-20240307"},
		{"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4", "a1b2c3d4"},
		{"claude-sonnet-4-5@20250929", "claude-sonnet-4-5-20250929"},
		{"anthropic.claude-haiku-4-5@20251001", "claude-haiku-4-5-20251001"},
		{"ft:gpt-4o-mini-2024-07-18:my-org::9AbCdEf", "ft:gpt-4o-mini-2024-07-18:my-org::9AbCdEf"},
		{"meta.llama3-70b-instruct-v1:0", "meta.llama3-70b-instruct-v1:0"},
		{"mistral/mistral-large", "mistral/mistral-large"},
		{"", ""},
	} {
		require.Equal(t, tc.want, Canonicalize(tc.in), "Canonicalize(%q)", tc.in)
	}
}

func TestParseBedrockID(t *testing.T) {
	for _, tc := range []struct {
		in, geo, model string
		ok             bool
	}{
		{"anthropic.claude-sonnet-4-5-20250929-v1:0", "", "claude-sonnet-4-5-20250929", true},
		{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us", "claude-sonnet-4-5-20250929", true},
		{"apac.anthropic.claude-3-haiku-20240307-v1:0", "apac", "claude-3-haiku-20240307", true},
		{"global.anthropic.claude-opus-4-6-v1", "global", "claude-opus-4-6", true},
		{"au.anthropic.claude-sonnet-4-6", "au", "claude-sonnet-4-6", true},
		{"anthropic.claude-v2:1", "", "claude", true},
		{"arn:aws:bedrock:eu-west-1:123:inference-profile/eu.anthropic.claude-3-7-sonnet-20250219-v1:0", "eu", "claude-3-7-sonnet-20250219", true},
		{"arn:aws:bedrock:us-east-1:123:application-inference-profile/abc", "", "", false},
		{"amazon.nova-pro-v1:0", "", "", false},
		{"US.anthropic.claude-sonnet-4-6", "", "", false}, // geo prefixes are lowercase
		{"x.y.anthropic.claude-sonnet-4-6", "", "", false},
		{"claude-sonnet-4-5", "", "", false},
		{"anthropic.", "", "", false},
	} {
		geo, model, ok := ParseBedrockID(tc.in)
		require.Equal(t, tc.ok, ok, tc.in)
		require.Equal(t, tc.geo, geo, tc.in)
		require.Equal(t, tc.model, model, tc.in)
	}
}

func TestUndated(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		dated    bool
	}{
		{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5", true},
		{"claude-3-5-sonnet-latest", "claude-3-5-sonnet", false},
		{"gpt-4o-2024-08-06", "gpt-4o", true},
		{"gpt-4o-mini-tts-2025-03-20", "gpt-4o-mini-tts", true},
		{"gpt-4-0613", "gpt-4", true},
		{"gpt-3.5-turbo-1106", "gpt-3.5-turbo", true},
		{"gpt-4o", "gpt-4o", false},
		{"claude-sonnet-4-5", "claude-sonnet-4-5", false},
		{"claude-opus-4-1", "claude-opus-4-1", false},
		{"gpt-oss-120b", "gpt-oss-120b", false},
		{"o1", "o1", false},
		{"model-9999", "model-9999", false},         // not a month-day
		{"model-30001231", "model-30001231", false}, // not a plausible year
		{"-latest", "-latest", false},
		{"20250929", "20250929", false},
		{"", "", false},
	} {
		require.Equal(t, tc.want, Undated(tc.in), "Undated(%q)", tc.in)
		require.Equal(t, tc.dated, IsDated(tc.in), "IsDated(%q)", tc.in)
	}
}

func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "arn:aws:bedrock:x:y/z", "azure/", "anthropic/claude-3.5", "a@b", "claude-@", "-latest", "gpt-35-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Canonicalize(s)
		_ = Undated(c)
		_ = IsDated(c)
		_, _, _ = ParseBedrockID(s)
		// Canonicalize is idempotent: a canonical name stays as it is.
		if cc := Canonicalize(c); cc != c && len(c) > 0 {
			// Nested prefixes ("openai/anthropic/x") legitimately peel one layer per call;
			// anything else must be stable.
			require.Contains(t, c, "/", "Canonicalize(%q)=%q but Canonicalize of that is %q", s, c, cc)
		}
	})
}
