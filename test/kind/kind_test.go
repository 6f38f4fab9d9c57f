//go:build kind

// Package kind runs against a real cluster set up by hack/kind-e2e.sh: the chart installed,
// the fake provider and the hack/dev custom resources applied, the gateway port-forwarded to
// KIND_GATEWAY_URL. It checks what only a cluster shows: the operator's snapshot reaching
// every replica, one-command rollback, and the kill switch.
package kind

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"
)

const devKey = "sk-llm-gateway-dev"

func env(t *testing.T, name string) string {
	v := os.Getenv(name)
	require.NotEmpty(t, v, "%s is set by hack/kind-e2e.sh", name)
	return v
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("kubectl", append([]string{"-n", env(t, "KIND_NAMESPACE")}, args...)...).CombinedOutput()
	require.NoError(t, err, string(out))
	return string(out)
}

// path asks the gateway which path (legacy or gateway) served a request.
func path(t *testing.T) (string, int) {
	req, err := http.NewRequest("POST", env(t, "KIND_GATEWAY_URL")+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+devKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0
	}
	resp.Body.Close()
	return resp.Header.Get("x-llm-gateway-path"), resp.StatusCode
}

func TestSDKsThroughTheCluster(t *testing.T) {
	base := env(t, "KIND_GATEWAY_URL")
	oc := openai.NewClient(ooption.WithBaseURL(base+"/v1"), ooption.WithAPIKey(devKey))
	chat, err := oc.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
	})
	require.NoError(t, err)
	require.NotEmpty(t, chat.Choices[0].Message.Content)

	ac := anthropic.NewClient(aoption.WithBaseURL(base), aoption.WithAPIKey(devKey))
	stream := ac.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 64,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
	})
	var msg anthropic.Message
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	require.Positive(t, msg.Usage.OutputTokens)
}

// One `kubectl patch` of the stage sends the team back to the legacy gateway on every replica
// (the Service spreads requests over all of them), and another brings it back.
func TestOneCommandRollback(t *testing.T) {
	ns := env(t, "KIND_NAMESPACE")
	legacy := fmt.Sprintf("http://fakeprovider.%s.svc:8300", ns)
	kubectl(t, "patch", "teamrollout", "dev", "--type=merge", "-p",
		fmt.Sprintf(`{"spec":{"stage":"Legacy","legacy":{"upstream":%q}}}`, legacy))
	defer kubectl(t, "patch", "teamrollout", "dev", "--type=merge", "-p", `{"spec":{"stage":"Gateway","legacy":null}}`)
	require.Eventually(t, func() bool {
		// Several requests in a row, so that every replica behind the Service has switched.
		for range 12 {
			if p, _ := path(t); p != "legacy" {
				return false
			}
		}
		return true
	}, 30*time.Second, 500*time.Millisecond, "every replica sends the team to its legacy upstream")

	kubectl(t, "patch", "teamrollout", "dev", "--type=merge", "-p", `{"spec":{"stage":"Gateway","legacy":null}}`)
	require.Eventually(t, func() bool {
		for range 12 {
			if p, _ := path(t); p != "gateway" {
				return false
			}
		}
		return true
	}, 30*time.Second, 500*time.Millisecond)
	out := kubectl(t, "get", "teamrollout", "dev", "-o", "jsonpath={.status.conditions[?(@.type=='Programmed')].message}")
	require.Contains(t, out, "3/3 replicas")
}

func TestKillSwitch(t *testing.T) {
	kubectl(t, "patch", "teambudget", "cluster-default", "--type=merge", "-p", `{"spec":{"suspended":true}}`)
	defer kubectl(t, "patch", "teambudget", "cluster-default", "--type=merge", "-p", `{"spec":{"suspended":false}}`)
	require.Eventually(t, func() bool {
		for range 12 {
			if _, status := path(t); status != http.StatusTooManyRequests {
				return false
			}
		}
		return true
	}, 30*time.Second, 500*time.Millisecond, "a suspended team is rejected on every replica")
	phase := kubectl(t, "get", "teambudget", "cluster-default", "-o", "jsonpath={.status.phase}")
	require.Equal(t, "Suspended", phase)
}
