package ship

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/dataplane/record/internal/fixture"
	"github.com/posthog/llm-gateway/test/capturesink"
)

func TestGzipTransport(t *testing.T) {
	sink := capturesink.New()
	srv := httptest.NewServer(sink)
	defer srv.Close()
	tr := NewHTTPTransport(time.Second)
	tr.Gzip = true
	e := builderFor("http://capture").Build(fixture.Call("gz-0"))[0]
	require.NoError(t, tr.Send(context.Background(), event.Destination{Host: srv.URL, APIKey: "k"}, [][]byte{e.Event}))
	_, ok := sink.Event(e.UUID)
	require.True(t, ok)
	tr.Client.CloseIdleConnections()
}

func TestSendErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryable  bool
		retryAfter string
		wait       time.Duration
	}{
		{500, true, "", 0}, {503, true, "7", 7 * time.Second}, {429, true, "2", 2 * time.Second},
		{408, true, "", 0}, {400, false, "", 0}, {413, false, "", 0}, {401, false, "", 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			w.WriteHeader(tc.status)
		}))
		err := NewHTTPTransport(time.Second).Send(context.Background(), event.Destination{Host: srv.URL, APIKey: "k"}, [][]byte{[]byte(`{}`)})
		srv.Close()
		var se *SendError
		require.ErrorAs(t, err, &se)
		require.Equal(t, tc.status, se.Status)
		require.Equal(t, tc.retryable, se.Retryable, "status %d", tc.status)
		require.Equal(t, tc.wait, se.RetryAfter)
	}
	err := NewHTTPTransport(time.Second).Send(context.Background(), event.Destination{Host: "http://127.0.0.1:1", APIKey: "k"}, [][]byte{[]byte(`{}`)})
	var se *SendError
	require.ErrorAs(t, err, &se)
	require.True(t, se.Retryable, "network errors are retried")
}

func TestBatchBodyWireFormat(t *testing.T) {
	body := BatchBody("phc_x", [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)}, fixture.T0)
	require.JSONEq(t, `{"api_key":"phc_x","batch":[{"a":1},{"b":2}],"sent_at":"2026-09-10T12:00:00.000Z"}`, string(body))
	require.Equal(t, `{"api_key":"phc_\"x","batch":[],"sent_at":"2026-09-10T12:00:00.000Z"}`,
		string(BatchBody(`phc_"x`, nil, fixture.T0)), "the exact bytes; the key is escaped")
}
