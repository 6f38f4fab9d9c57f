// Package wiretest runs stream readers over recorded upstream transcripts and compares what
// the client would receive, and what the gateway learned, with golden files.
package wiretest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/provider"
)

// Outcome is everything a stream reader produced.
type Outcome struct {
	// Client is the concatenated Raw of the visible events: the bytes the client receives.
	Client []byte
	// Events are the event names, with "(hidden)" for metered-only events.
	Events []string
	Result provider.Result
	// End is the error Next ended with (io.EOF for a clean end).
	End error
}

// Run drains r (closing it) and returns its outcome. It fails the test after 100000 events.
func Run(t testing.TB, r provider.EventReader) Outcome {
	t.Helper()
	defer r.Close()
	var o Outcome
	for i := 0; ; i++ {
		require.Less(t, i, 100000, "stream reader does not end")
		ev, err := r.Next()
		if err != nil {
			o.End = err
			break
		}
		name := ev.Name
		if name == "" {
			name = "data"
		}
		if ev.Raw == nil {
			name += " (hidden)"
		}
		o.Events = append(o.Events, name)
		o.Client = append(o.Client, ev.Raw...)
	}
	// The end is sticky.
	_, err := r.Next()
	require.Equal(t, o.End, err, "Next after the end must repeat the end")
	o.Result = *r.Result()
	return o
}

// Response wraps a body in a 200 response.
func Response(body io.Reader, contentType string) *http.Response {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {contentType}},
		Body:       io.NopCloser(body),
	}
}

// Golden compares o with testdata/<name>.golden, rewriting it when update is set.
func Golden(t *testing.T, name string, o Outcome, update bool) {
	t.Helper()
	res, err := json.MarshalIndent(o.Result, "", "  ")
	require.NoError(t, err)
	end := "EOF"
	if !errors.Is(o.End, io.EOF) {
		end = fmt.Sprintf("error: %v", o.End)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "### events\n%q\n### end\n%s\n### result\n%s\n### client bytes\n%s", o.Events, end, res, o.Client)
	path := filepath.Join("testdata", name+".golden")
	if update {
		require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run the test with -update")
	require.Equal(t, string(want), b.String())
}

// ReadFile reads testdata/<name>.
func ReadFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// BlockingBody is a body whose Read blocks until Close, like a stalled upstream connection.
type BlockingBody struct {
	prefix io.Reader
	closed chan struct{}
}

// NewBlockingBody returns a body that yields prefix, then blocks until closed.
func NewBlockingBody(prefix []byte) *BlockingBody {
	return &BlockingBody{prefix: bytes.NewReader(prefix), closed: make(chan struct{})}
}

func (b *BlockingBody) Read(p []byte) (int, error) {
	if n, _ := b.prefix.Read(p); n > 0 {
		return n, nil
	}
	<-b.closed
	return 0, errors.New("read on closed body")
}

func (b *BlockingBody) Close() error {
	select {
	case <-b.closed:
	default:
		close(b.closed)
	}
	return nil
}
