package fakeprovider

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/bedrock"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/require"
)

func anthropicClient(url string, opts ...option.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]option.RequestOption{
		option.WithoutEnvironmentDefaults(), option.WithBaseURL(url), option.WithAPIKey("sk-ant-test"), option.WithMaxRetries(0),
	}, opts...)...)
}

func messageParams(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 100,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello there, fake"))},
	}
}

// requireAnthropicUsage checks Anthropic usage semantics: input_tokens excludes cache reads
// and writes; the 5m/1h split breaks down cache_creation_input_tokens.
func requireAnthropicUsage(t *testing.T, u anthropic.Usage) {
	t.Helper()
	require.Equal(t, int64(120), u.InputTokens)
	require.Equal(t, int64(800), u.CacheReadInputTokens)
	require.Equal(t, int64(50), u.CacheCreationInputTokens)
	require.Equal(t, int64(30), u.CacheCreation.Ephemeral5mInputTokens)
	require.Equal(t, int64(20), u.CacheCreation.Ephemeral1hInputTokens)
	require.Equal(t, int64(45), u.OutputTokens)
	require.Equal(t, int64(7), u.OutputTokensDetails.ThinkingTokens)
}

// streamMessage accumulates a message stream, returning the event types seen.
func streamMessage(t *testing.T, stream interface {
	Next() bool
	Current() anthropic.MessageStreamEventUnion
	Err() error
}) (anthropic.Message, []string, error) {
	t.Helper()
	var msg anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		require.NoError(t, msg.Accumulate(ev))
	}
	return msg, types, stream.Err()
}

func TestAnthropicSDKMessages(t *testing.T) {
	fp, srv := newFake(t, Config{AnthropicKey: "sk-ant-test", Default: &Scenario{Text: "Claude fakes well", Usage: &testUsage}})
	client := anthropicClient(srv.URL)
	ctx := context.Background()
	const model = "claude-sonnet-4-5-20250929"

	t.Run("non-stream", func(t *testing.T) {
		msg, err := client.Messages.New(ctx, messageParams(model))
		require.NoError(t, err)
		require.Equal(t, "Claude fakes well", msg.Content[0].Text)
		require.Equal(t, model, string(msg.Model))
		require.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)
		require.True(t, strings.HasPrefix(msg.ID, "msg_"))
		requireAnthropicUsage(t, msg.Usage)
	})

	t.Run("stream", func(t *testing.T) {
		msg, types, err := streamMessage(t, client.Messages.NewStreaming(ctx, messageParams(model)))
		require.NoError(t, err)
		require.Equal(t, "Claude fakes well", msg.Content[0].Text)
		// The SDK drops ping events; TestGolden shows them on the wire.
		require.Equal(t, []string{"message_start", "content_block_start",
			"content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta",
			"content_block_stop", "message_delta", "message_stop"}, types)
		requireAnthropicUsage(t, msg.Usage)
	})

	t.Run("beta endpoint sends the beta header", func(t *testing.T) {
		_, err := client.Beta.Messages.New(ctx, anthropic.BetaMessageNewParams{
			Model: model, MaxTokens: 10, Betas: []anthropic.AnthropicBeta{"interleaved-thinking-2025-05-14"},
			Messages: []anthropic.BetaMessageParam{anthropic.NewBetaUserMessage(anthropic.NewBetaTextBlock("hi"))},
		})
		require.NoError(t, err)
		last, _ := fp.LastRequest()
		require.Equal(t, "interleaved-thinking-2025-05-14", last.Header.Get("Anthropic-Beta"))
	})

	t.Run("bearer auth", func(t *testing.T) {
		c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(srv.URL), option.WithAuthToken("sk-ant-test"), option.WithMaxRetries(0))
		_, err := c.Messages.New(ctx, messageParams(model))
		require.NoError(t, err)
		last, _ := fp.LastRequest()
		require.Equal(t, "bearer", last.AuthMethod)
	})

	t.Run("wrong key", func(t *testing.T) {
		c := anthropicClient(srv.URL, option.WithAPIKey("nope"))
		_, err := c.Messages.New(ctx, messageParams(model))
		var apiErr *anthropic.Error
		require.True(t, errors.As(err, &apiErr), "%v", err)
		require.Equal(t, 401, apiErr.StatusCode)
		require.EqualValues(t, "authentication_error", apiErr.Type())
	})
}

func TestAnthropicSDKCountTokensMatchesMessages(t *testing.T) {
	_, srv := newFake(t, Config{})
	client := anthropicClient(srv.URL)
	ctx := context.Background()
	params := messageParams("claude-haiku-4-5-20251001")
	params.System = []anthropic.TextBlockParam{{Text: "You are a careful assistant who answers briefly."}}

	count, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
		Model: params.Model, Messages: params.Messages,
		System: anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: params.System},
	})
	require.NoError(t, err)
	msg, err := client.Messages.New(ctx, params)
	require.NoError(t, err)
	require.Equal(t, msg.Usage.InputTokens, count.InputTokens)
	require.Equal(t, int64((len("hello there, fake")+len("You are a careful assistant who answers briefly.")+3)/4), count.InputTokens)
	require.Equal(t, "Hello from fake anthropic", msg.Content[0].Text)
	require.Equal(t, int64(4), msg.Usage.OutputTokens, "default output is the word count")
}

const (
	awsKeyID  = "AKIDFAKEPROVIDER"
	awsSecret = "fake/secret+key"
	awsToken  = "session-token"
)

func bedrockClient(url string, secret string) anthropic.Client {
	cfg := aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: awsKeyID, SecretAccessKey: secret, SessionToken: awsToken}, nil
		}),
	}
	return anthropic.NewClient(bedrock.WithConfig(cfg), option.WithBaseURL(url), option.WithMaxRetries(0), bedrockVersion)
}

// bedrockVersion: anthropic-sdk-go v2 copies its anthropic-version header (2026-10-21) into the
// InvokeModel body's anthropic_version; Bedrock documents bedrock-2023-05-31 as the only value.
var bedrockVersion = option.WithHeader("anthropic-version", "bedrock-2023-05-31")

func TestBedrockSDK(t *testing.T) {
	t.Setenv("AWS_BEARER_TOKEN_BEDROCK", "")
	fp, srv := newFake(t, Config{
		Bedrock: BedrockAuth{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, SessionToken: awsToken, Region: "us-east-1", APIKey: "bedrock-api-key"},
		Default: &Scenario{Text: "Bedrock streams frames", Usage: &testUsage},
	})
	client := bedrockClient(srv.URL, awsSecret)
	ctx := context.Background()

	for _, model := range []string{
		"us.anthropic.claude-sonnet-4-20250514-v1:0",
		"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0",
	} {
		t.Run("non-stream "+model[:3], func(t *testing.T) {
			msg, err := client.Messages.New(ctx, messageParams(model))
			require.NoError(t, err)
			require.Equal(t, "Bedrock streams frames", msg.Content[0].Text)
			require.Equal(t, "claude-sonnet-4-20250514", string(msg.Model))
			require.True(t, strings.HasPrefix(msg.ID, "msg_bdrk_"))
			requireAnthropicUsage(t, msg.Usage)
			last, _ := fp.LastRequest()
			require.Equal(t, "/model/"+model+"/invoke", last.Path)
			require.Equal(t, "sigv4", last.AuthMethod)
			require.Equal(t, AuthOK, last.Auth)
		})

		t.Run("stream "+model[:3], func(t *testing.T) {
			msg, types, err := streamMessage(t, client.Messages.NewStreaming(ctx, messageParams(model)))
			require.NoError(t, err)
			require.Equal(t, "Bedrock streams frames", msg.Content[0].Text)
			require.Equal(t, "message_stop", types[len(types)-1])
			requireAnthropicUsage(t, msg.Usage)
			last, _ := fp.LastRequest()
			require.Equal(t, "/model/"+model+"/invoke-with-response-stream", last.Path)
			require.NotContains(t, string(last.Body), `"model"`, "the SDK moves model to the path")
			require.NotContains(t, string(last.Body), `"stream"`)
			require.Contains(t, string(last.Body), `"anthropic_version":"bedrock-2023-05-31"`)
		})
	}

	t.Run("wrong secret is an invalid signature", func(t *testing.T) {
		bad := bedrockClient(srv.URL, "not-the-secret")
		_, err := bad.Messages.New(ctx, messageParams("us.anthropic.claude-sonnet-4-20250514-v1:0"))
		var apiErr *anthropic.Error
		require.True(t, errors.As(err, &apiErr), "%v", err)
		require.Equal(t, 403, apiErr.StatusCode)
		require.Equal(t, "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.bedrock/", apiErr.Response.Header.Get("X-Amzn-ErrorType"))
		last, _ := fp.LastRequest()
		require.Equal(t, AuthInvalid, last.Auth)
	})

	t.Run("bedrock api key", func(t *testing.T) {
		cfg := aws.Config{Region: "us-east-1", BearerAuthTokenProvider: bedrock.NewStaticBearerTokenProvider("bedrock-api-key"),
			AuthSchemePreference: []string{"httpBearerAuth"}}
		c := anthropic.NewClient(bedrock.WithConfig(cfg), option.WithBaseURL(srv.URL), option.WithMaxRetries(0), bedrockVersion)
		msg, err := c.Messages.New(ctx, messageParams("us.anthropic.claude-sonnet-4-20250514-v1:0"))
		require.NoError(t, err)
		require.Equal(t, "Bedrock streams frames", msg.Content[0].Text)
		last, _ := fp.LastRequest()
		require.Equal(t, "bearer", last.AuthMethod)
	})

	t.Run("betas go in the body; rejected ones are 400", func(t *testing.T) {
		_, err := client.Beta.Messages.New(ctx, anthropic.BetaMessageNewParams{
			Model: "us.anthropic.claude-sonnet-4-20250514-v1:0", MaxTokens: 10,
			Betas:    []anthropic.AnthropicBeta{"interleaved-thinking-2025-05-14"},
			Messages: []anthropic.BetaMessageParam{anthropic.NewBetaUserMessage(anthropic.NewBetaTextBlock("hi"))},
		})
		require.NoError(t, err)
		last, _ := fp.LastRequest()
		require.Contains(t, string(last.Body), `"anthropic_beta":["interleaved-thinking-2025-05-14"]`)

		_, err = client.Beta.Messages.New(ctx, anthropic.BetaMessageNewParams{
			Model: "us.anthropic.claude-sonnet-4-20250514-v1:0", MaxTokens: 10,
			Betas:    []anthropic.AnthropicBeta{"files-api-2025-04-14"},
			Messages: []anthropic.BetaMessageParam{anthropic.NewBetaUserMessage(anthropic.NewBetaTextBlock("hi"))},
		})
		var apiErr *anthropic.Error
		require.True(t, errors.As(err, &apiErr), "%v", err)
		require.Equal(t, 400, apiErr.StatusCode)
		require.Contains(t, apiErr.RawJSON(), "invalid beta flag")
	})

	t.Run("mid-stream exception frame surfaces as a stream error", func(t *testing.T) {
		fp.SetDefaultFor(Bedrock, &Scenario{Fault: FaultError, FaultAfter: 2, ErrorType: "ThrottlingException", Times: 1})
		msg, _, err := streamMessage(t, client.Messages.NewStreaming(ctx, messageParams("us.anthropic.claude-sonnet-4-20250514-v1:0")))
		require.Error(t, err)
		require.Contains(t, err.Error(), "throttlingException")
		require.Equal(t, "Hello from", msg.Content[0].Text[:10], "two deltas arrived before the exception")
	})
}
