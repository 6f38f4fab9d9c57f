package ship

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/dataplane/record/outbox"
	"github.com/posthog/llm-gateway/test/capturesink"
)

func leakCheck(t *testing.T) {
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, goleak.IgnoreCurrent())
	})
}

func startSink(t *testing.T) *capturesink.Sink {
	t.Helper()
	s := capturesink.New()
	require.NoError(t, s.Start(""))
	t.Cleanup(s.Close)
	return s
}

func openFileOutbox(t *testing.T, dir string) outbox.Outbox {
	t.Helper()
	ob, err := outbox.NewFile(dir, outbox.FileOptions{})
	require.NoError(t, err)
	return ob
}

// builderFor builds events addressed to host.
func builderFor(host string) *event.Builder {
	return &event.Builder{MaxEventBytes: event.DefaultMaxBytes, DefaultDestination: event.Destination{Host: host, APIKey: "phc_test"}, LibVersion: "test"}
}
