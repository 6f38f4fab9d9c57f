package fakeprovider

import (
	"context"
	"errors"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/cost"
)

var testUsage = cost.Usage{InputTokens: 120, CacheReadTokens: 800, CacheWrite5mTokens: 30, CacheWrite1hTokens: 20, OutputTokens: 45, ReasoningTokens: 7}

func openAIClient(url string, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(url + "/v1/"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0),
	}, opts...)...)
}

func chatParams(stream bool) openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-2024-08-06",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello there, fake")},
	}
	if stream {
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	}
	return p
}

// requireChatUsage checks OpenAI usage semantics: prompt_tokens includes cached tokens.
func requireChatUsage(t *testing.T, u openai.CompletionUsage) {
	t.Helper()
	require.Equal(t, int64(120+800+50), u.PromptTokens)
	require.Equal(t, int64(45), u.CompletionTokens)
	require.Equal(t, int64(120+800+50+45), u.TotalTokens)
	require.Equal(t, int64(800), u.PromptTokensDetails.CachedTokens)
	require.Equal(t, int64(7), u.CompletionTokensDetails.ReasoningTokens)
}

func TestOpenAISDKChat(t *testing.T) {
	fp, srv := newFake(t, Config{OpenAIKey: "sk-test", Default: &Scenario{Text: "Streaming is fun", Usage: &testUsage, Chunks: 3}})
	client := openAIClient(srv.URL)
	ctx := context.Background()

	t.Run("non-stream", func(t *testing.T) {
		res, err := client.Chat.Completions.New(ctx, chatParams(false))
		require.NoError(t, err)
		require.Equal(t, "Streaming is fun", res.Choices[0].Message.Content)
		require.Equal(t, "gpt-4o-2024-08-06", res.Model)
		require.Equal(t, "stop", res.Choices[0].FinishReason)
		require.Contains(t, res.ID, "chatcmpl-")
		requireChatUsage(t, res.Usage)
	})

	t.Run("stream with include_usage", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, chatParams(true))
		var acc openai.ChatCompletionAccumulator
		chunks, usageChunks := 0, 0
		for stream.Next() {
			chunk := stream.Current()
			require.True(t, acc.AddChunk(chunk))
			chunks++
			if chunk.JSON.Usage.Valid() && chunk.Usage.TotalTokens > 0 {
				usageChunks++
				require.Empty(t, chunk.Choices, "the usage chunk has choices []")
			}
		}
		require.NoError(t, stream.Err())
		require.Equal(t, 1, usageChunks)
		require.Equal(t, 1+3+1+1, chunks, "role, 3 deltas, finish, usage")
		require.Equal(t, "Streaming is fun", acc.Choices[0].Message.Content)
		requireChatUsage(t, acc.Usage)
	})

	t.Run("stream without include_usage has no usage chunk", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, chatParams(false))
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			require.True(t, acc.AddChunk(stream.Current()))
			require.NotContains(t, stream.Current().RawJSON(), `"usage"`, "no usage key at all without include_usage")
		}
		require.NoError(t, stream.Err())
		require.Equal(t, "Streaming is fun", acc.Choices[0].Message.Content)
		require.Zero(t, acc.Usage.TotalTokens)
	})

	t.Run("wrong key", func(t *testing.T) {
		wrong := openAIClient(srv.URL, option.WithAPIKey("sk-wrong"))
		_, err := wrong.Chat.Completions.New(ctx, chatParams(false))
		var apiErr *openai.Error
		require.True(t, errors.As(err, &apiErr), "%v", err)
		require.Equal(t, 401, apiErr.StatusCode)
		require.Equal(t, "invalid_api_key", apiErr.Code)
		last, ok := fp.LastRequest()
		require.True(t, ok)
		require.Equal(t, AuthInvalid, last.Auth)
	})
}

func TestOpenAISDKResponses(t *testing.T) {
	_, srv := newFake(t, Config{Default: &Scenario{Text: "Responses are here", Usage: &testUsage}})
	client := openAIClient(srv.URL)
	ctx := context.Background()
	params := responses.ResponseNewParams{
		Model: "gpt-4.1",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello there, fake")},
	}

	requireUsage := func(t *testing.T, u responses.ResponseUsage) {
		require.Equal(t, int64(970), u.InputTokens, "input_tokens includes cached tokens")
		require.Equal(t, int64(800), u.InputTokensDetails.CachedTokens)
		require.Equal(t, int64(45), u.OutputTokens)
		require.Equal(t, int64(7), u.OutputTokensDetails.ReasoningTokens)
		require.Equal(t, int64(1015), u.TotalTokens)
	}

	t.Run("non-stream", func(t *testing.T) {
		res, err := client.Responses.New(ctx, params)
		require.NoError(t, err)
		require.Equal(t, "Responses are here", res.OutputText())
		require.Equal(t, responses.ResponseStatusCompleted, res.Status)
		require.Contains(t, res.ID, "resp_")
		requireUsage(t, res.Usage)
	})

	t.Run("stream", func(t *testing.T) {
		stream := client.Responses.NewStreaming(ctx, params)
		var text string
		var last responses.ResponseStreamEventUnion
		seq := int64(0)
		for stream.Next() {
			ev := stream.Current()
			require.Equal(t, seq, ev.SequenceNumber)
			seq++
			if ev.Type == "response.output_text.delta" {
				text += ev.Delta
			}
			if ev.Type != "response.completed" {
				require.False(t, ev.Response.JSON.Usage.Valid() && ev.Response.Usage.TotalTokens > 0, "usage only in the terminal event")
			}
			last = ev
		}
		require.NoError(t, stream.Err())
		require.Equal(t, "Responses are here", text)
		require.Equal(t, "response.completed", last.Type)
		requireUsage(t, last.Response.Usage)
	})
}

func TestOpenAISDKAzure(t *testing.T) {
	fp, srv := newFake(t, Config{
		AzureKey:         "azure-key",
		AzureDeployments: map[string]string{"my-gpt4o": "gpt-4o-2024-11-20"},
		Default:          &Scenario{Text: "Azure says hi", Usage: &testUsage},
	})
	ctx := context.Background()
	client := openai.NewClient(
		azure.WithEndpoint(srv.URL, "2024-10-21"), azure.WithAPIKey("azure-key"), azure.WithUnsafeAllowHTTP(),
		option.WithMaxRetries(0),
	)
	params := chatParams(true)
	params.Model = "my-gpt4o"

	t.Run("deployment chat stream", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, params)
		var acc openai.ChatCompletionAccumulator
		first := true
		for stream.Next() {
			chunk := stream.Current()
			if first {
				require.Empty(t, chunk.Choices, "Azure's first chunk is the prompt annotation")
				require.Empty(t, chunk.ID)
				require.Contains(t, chunk.RawJSON(), `"prompt_filter_results"`)
				first = false
				continue
			}
			require.True(t, acc.AddChunk(chunk))
		}
		require.NoError(t, stream.Err())
		require.Equal(t, "Azure says hi", acc.Choices[0].Message.Content)
		require.Equal(t, "gpt-4o-2024-11-20", acc.Model, "the response model is the deployment's model")
		requireChatUsage(t, acc.Usage)
		last, _ := fp.LastRequest()
		require.Equal(t, "/openai/deployments/my-gpt4o/chat/completions", last.Path)
		require.Equal(t, "api-version=2024-10-21", last.RawQuery)
		require.Equal(t, "api-key", last.AuthMethod)
	})

	t.Run("deployment chat", func(t *testing.T) {
		p := chatParams(false)
		p.Model = "my-gpt4o"
		res, err := client.Chat.Completions.New(ctx, p)
		require.NoError(t, err)
		require.Equal(t, "Azure says hi", res.Choices[0].Message.Content)
		require.Equal(t, "gpt-4o-2024-11-20", res.Model)
		requireChatUsage(t, res.Usage)
	})

	t.Run("classic responses", func(t *testing.T) {
		res, err := client.Responses.New(ctx, responses.ResponseNewParams{
			Model: "my-gpt4o", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
		})
		require.NoError(t, err)
		require.Equal(t, "Azure says hi", res.OutputText())
		require.Equal(t, "gpt-4o-2024-11-20", res.Model)
		last, _ := fp.LastRequest()
		require.Equal(t, "/openai/responses", last.Path)
	})

	t.Run("unknown deployment", func(t *testing.T) {
		p := chatParams(false)
		p.Model = "nope"
		_, err := client.Chat.Completions.New(ctx, p)
		var apiErr *openai.Error
		require.True(t, errors.As(err, &apiErr), "%v", err)
		require.Equal(t, 404, apiErr.StatusCode)
		require.Equal(t, "DeploymentNotFound", apiErr.Code)
	})

	v1 := func(opts ...option.RequestOption) openai.Client {
		return openai.NewClient(append([]option.RequestOption{option.WithBaseURL(srv.URL + "/openai/v1/"), option.WithMaxRetries(0)}, opts...)...)
	}
	t.Run("v1 with bearer key", func(t *testing.T) {
		p := chatParams(false)
		p.Model = "my-gpt4o"
		c := v1(option.WithAPIKey("azure-key"))
		res, err := c.Chat.Completions.New(ctx, p)
		require.NoError(t, err)
		require.Equal(t, "gpt-4o-2024-11-20", res.Model)
		last, _ := fp.LastRequest()
		require.Equal(t, "/openai/v1/chat/completions", last.Path)
		require.Equal(t, "bearer", last.AuthMethod)
	})

	t.Run("v1 responses with api-key header", func(t *testing.T) {
		c := v1(option.WithHeader("api-key", "azure-key"))
		res, err := c.Responses.New(ctx, responses.ResponseNewParams{
			Model: "my-gpt4o", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
		})
		require.NoError(t, err)
		require.Equal(t, "Azure says hi", res.OutputText())
	})
}
