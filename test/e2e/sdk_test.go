package e2e

import (
	"context"
	"net/http"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

var usage = cost.Usage{InputTokens: 120, CacheReadTokens: 800, CacheWrite5mTokens: 30, CacheWrite1hTokens: 20, OutputTokens: 45, ReasoningTokens: 7}

// openAIUsage is usage as the gateway meters it from OpenAI, which reports cache writes as one
// undivided count (recorded as 5-minute writes).
var openAIUsage = cost.Usage{InputTokens: 120, CacheReadTokens: 800, CacheWrite5mTokens: 50, OutputTokens: 45, ReasoningTokens: 7}

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello through the gateway")},
	}
}

func messageParams() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello through the gateway"))},
	}
}

func requireChatUsage(t *testing.T, u openai.CompletionUsage) {
	t.Helper()
	require.Equal(t, int64(120+800+50), u.PromptTokens)
	require.Equal(t, int64(800), u.PromptTokensDetails.CachedTokens)
	require.Equal(t, int64(45), u.CompletionTokens)
	require.Equal(t, int64(7), u.CompletionTokensDetails.ReasoningTokens)
}

func requireAnthropicUsage(t *testing.T, u anthropic.Usage) {
	t.Helper()
	require.Equal(t, int64(120), u.InputTokens)
	require.Equal(t, int64(800), u.CacheReadInputTokens)
	require.Equal(t, int64(50), u.CacheCreationInputTokens)
	require.Equal(t, int64(45), u.OutputTokens)
}

func TestOpenAISDKChat(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.SetDefault(&fakeprovider.Scenario{Text: "Hi from the gateway test", Usage: &usage, Chunks: 3})
	client := e.openai()
	ctx := context.Background()

	t.Run("non-stream", func(t *testing.T) {
		res, err := client.Chat.Completions.New(ctx, chatParams("gpt-4o"))
		require.NoError(t, err)
		require.Equal(t, "Hi from the gateway test", res.Choices[0].Message.Content)
		requireChatUsage(t, res.Usage)
		rec := e.rec.Last(t)
		require.Equal(t, openAIUsage, rec.Usage, "the gateway metered exactly what the provider reported")
		require.True(t, rec.Cost.Priced)
	})

	t.Run("stream with include_usage", func(t *testing.T) {
		p := chatParams("gpt-4o")
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := client.Chat.Completions.NewStreaming(ctx, p)
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			require.True(t, acc.AddChunk(stream.Current()))
		}
		require.NoError(t, stream.Err())
		require.Equal(t, "Hi from the gateway test", acc.Choices[0].Message.Content)
		requireChatUsage(t, acc.Usage)
	})

	t.Run("stream without include_usage never sees the usage chunk", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, chatParams("gpt-4o"))
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			chunk := stream.Current()
			require.False(t, chunk.JSON.Usage.Valid() && chunk.Usage.TotalTokens > 0, "no usage chunk: %s", chunk.RawJSON())
			require.NotEmpty(t, chunk.Choices, "the usage-only chunk (choices []) is not relayed")
			require.True(t, acc.AddChunk(chunk))
		}
		require.NoError(t, stream.Err())
		require.Equal(t, "Hi from the gateway test", acc.Choices[0].Message.Content)
		last, _ := e.fake.LastRequest()
		require.Contains(t, string(last.Body), `"include_usage":true`, "the gateway asked the provider for usage")
		rec := e.rec.Last(t)
		require.True(t, rec.UsageReported)
		require.Equal(t, openAIUsage, rec.Usage)
	})
}

func TestOpenAISDKResponses(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.SetDefault(&fakeprovider.Scenario{Text: "Responses through the gateway", Usage: &usage})
	client := e.openai()
	ctx := context.Background()
	params := responses.ResponseNewParams{Model: "gpt-4o", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}

	res, err := client.Responses.New(ctx, params)
	require.NoError(t, err)
	require.Equal(t, "Responses through the gateway", res.OutputText())
	require.Equal(t, int64(970), res.Usage.InputTokens)
	require.Equal(t, int64(45), res.Usage.OutputTokens)

	stream := client.Responses.NewStreaming(ctx, params)
	text := ""
	var last responses.ResponseStreamEventUnion
	for stream.Next() {
		ev := stream.Current()
		if ev.Type == "response.output_text.delta" {
			text += ev.Delta
		}
		last = ev
	}
	require.NoError(t, stream.Err())
	require.Equal(t, "Responses through the gateway", text)
	require.Equal(t, "response.completed", last.Type)
	require.Equal(t, int64(970), last.Response.Usage.InputTokens)
	require.Equal(t, openAIUsage, e.rec.Last(t).Usage)
}

func TestAnthropicSDKMessages(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.SetDefault(&fakeprovider.Scenario{Text: "Claude via the gateway", Usage: &usage})
	client := e.anthropic()
	ctx := context.Background()

	msg, err := client.Messages.New(ctx, messageParams())
	require.NoError(t, err)
	require.Equal(t, "Claude via the gateway", msg.Content[0].Text)
	requireAnthropicUsage(t, msg.Usage)

	stream := client.Messages.NewStreaming(ctx, messageParams())
	var acc anthropic.Message
	for stream.Next() {
		require.NoError(t, acc.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	require.Equal(t, "Claude via the gateway", acc.Content[0].Text)
	requireAnthropicUsage(t, acc.Usage)
	rec := e.rec.Last(t)
	require.Equal(t, usage.InputTokens, rec.Usage.InputTokens)
	require.Equal(t, usage.CacheReadTokens, rec.Usage.CacheReadTokens)
	require.Equal(t, usage.OutputTokens, rec.Usage.OutputTokens)
	require.Equal(t, "llm/anthropic", rec.Backend)

	count, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "claude-sonnet-4-5", Messages: messageParams().Messages})
	require.NoError(t, err)
	require.Positive(t, count.InputTokens)
}

func TestModelsListWithBothSDKs(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	oc := e.openai()
	page, err := oc.Models.List(ctx)
	require.NoError(t, err)
	byID := map[string]openai.Model{}
	for _, m := range page.Data {
		byID[m.ID] = m
		require.Equal(t, "model", string(m.Object))
		require.True(t, m.JSON.Created.Valid(), m.ID)
	}
	require.Len(t, byID, 2)
	gpt, claude := byID["gpt-4o"], byID["claude-sonnet-4-5"]
	require.Equal(t, "openai", gpt.OwnedBy)
	require.Equal(t, "anthropic", claude.OwnedBy)
	// The gateway's own fields reach an OpenAI SDK user as extra fields.
	require.JSONEq(t, `["openai","azure"]`, gpt.JSON.ExtraFields["providers"].Raw())
	require.JSONEq(t, `{"on":["ConnectionError","NotFound","Overloaded","QuotaExhausted","RateLimited","ServerError","Timeout","UpstreamAuth"],
		"max_attempts":2,"targets":["llm/azure"]}`, gpt.JSON.ExtraFields["failover"].Raw())
	backends := gjson.Parse(gpt.JSON.ExtraFields["backends"].Raw())
	require.Equal(t, "llm/azure", backends.Get("1.name").Str)
	require.Equal(t, azureDeploy, backends.Get("1.upstream_model").Str, "the Azure deployment from the modelMap")
	require.Equal(t, 2.5, backends.Get("1.pricing.input").Float())
	require.Equal(t, 2.5, gjson.Parse(gpt.JSON.ExtraFields["pricing"].Raw()).Get("input").Float())

	ac := e.anthropic()
	apage, err := ac.Models.List(ctx, anthropic.ModelListParams{})
	require.NoError(t, err)
	require.False(t, apage.HasMore)
	require.Equal(t, "gpt-4o", apage.FirstID, "OpenAI-shape models first")
	require.Equal(t, "claude-sonnet-4-5", apage.LastID)
	ids := []string{}
	for _, m := range apage.Data {
		ids = append(ids, m.ID)
		require.Equal(t, m.ID, m.DisplayName)
		require.False(t, m.CreatedAt.IsZero(), m.ID)
	}
	require.ElementsMatch(t, []string{"gpt-4o", "claude-sonnet-4-5"}, ids)
	// The Anthropic SDK reads the limits and the capabilities it knows natively.
	am := apage.Data[1]
	require.Equal(t, "claude-sonnet-4-5", am.ID)
	require.Equal(t, int64(200_000), am.MaxInputTokens)
	require.Equal(t, int64(4096), am.MaxTokens, "the route clamps max_tokens at 4,096")
	require.True(t, am.Capabilities.ImageInput.Supported)
	require.True(t, am.Capabilities.StructuredOutputs.Supported)
	require.True(t, am.Capabilities.Thinking.Supported)
	require.False(t, apage.Data[0].Capabilities.Thinking.Supported, "gpt-4o does not reason")
	require.True(t, gjson.Parse(am.Capabilities.JSON.ExtraFields["streaming"].Raw()).Get("supported").Bool())
	require.True(t, gjson.Parse(am.Capabilities.JSON.ExtraFields["tools"].Raw()).Get("supported").Bool())
	bedrock := gjson.Parse(am.JSON.ExtraFields["backends"].Raw()).Get("1")
	require.Equal(t, "bedrock", bedrock.Get("provider").Str)
	require.Equal(t, bedrockModel, bedrock.Get("upstream_model").Str)
	require.Equal(t, 3.3, bedrock.Get("pricing.input").Float(), "the us. inference profile's price")
	require.Zero(t, e.upstreamRequests(), "the listing is the gateway's own")
}

func TestFailoverToHostedEquivalent(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()

	// Anthropic overloaded: Bedrock serves, byte-compatible for the SDK.
	e.fake.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Status: 529})
	e.fake.SetDefaultFor(fakeprovider.Bedrock, &fakeprovider.Scenario{Text: "Bedrock to the rescue", Usage: &usage})
	ac := e.anthropic()
	stream := ac.Messages.NewStreaming(ctx, messageParams())
	var acc anthropic.Message
	for stream.Next() {
		require.NoError(t, acc.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	require.Equal(t, "Bedrock to the rescue", acc.Content[0].Text)
	rec := e.rec.Last(t)
	require.Equal(t, "llm/bedrock", rec.Backend)
	require.Equal(t, "Overloaded", rec.Attempts[0].ErrorClass)
	reqs := e.fake.Requests()
	require.Equal(t, "/model/"+bedrockModel+"/invoke-with-response-stream", reqs[len(reqs)-1].Path)
	require.Equal(t, fakeprovider.AuthOK, reqs[len(reqs)-1].Auth, "SigV4 verified by the fake")

	// OpenAI down with 500s: Azure serves.
	e.fake.SetDefaultFor(fakeprovider.OpenAI, &fakeprovider.Scenario{Status: 500})
	e.fake.SetDefaultFor(fakeprovider.Azure, &fakeprovider.Scenario{Text: "Azure to the rescue", Usage: &usage})
	var raw *http.Response
	oc := e.openai(ooption.WithResponseInto(&raw))
	res, err := oc.Chat.Completions.New(ctx, chatParams("gpt-4o"))
	require.NoError(t, err)
	require.Equal(t, "Azure to the rescue", res.Choices[0].Message.Content)
	require.Equal(t, azureModel, res.Model)
	require.Equal(t, "llm/azure", e.rec.Last(t).Backend)
	require.Equal(t, "2", raw.Header.Get("X-Llm-Gateway-Attempts"))
	require.Equal(t, "llm/azure", raw.Header.Get("X-Llm-Gateway-Backend"))
}
