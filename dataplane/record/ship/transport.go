package ship

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/internal/clock"
	"github.com/posthog/llm-gateway/internal/jsonx"
)

// Transport delivers one batch of events to one destination.
type Transport interface {
	// Send returns nil only when the destination accepted every event of the batch.
	// Failures are *SendError.
	Send(ctx context.Context, dest event.Destination, events [][]byte) error
}

// SendError is a failed delivery.
type SendError struct {
	// Status is the HTTP status (0: no response: network error or timeout).
	Status int
	// Retryable: the same batch may succeed later (5xx, 429, 408, network). A non-retryable
	// failure (other 4xx) is blamed on the batch's content: it is split to find the bad event.
	Retryable bool
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Body is the start of the response body, for logs.
	Body string
	Err  error
}

func (e *SendError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("send events: %v", e.Err)
	}
	return fmt.Sprintf("send events: capture answered %d: %s", e.Status, e.Body)
}

func (e *SendError) Unwrap() error { return e.Err }

// HTTPTransport posts batches to PostHog capture's legacy batch endpoint, POST {host}/batch/,
// in posthog-go's wire format (message.go batch, capture.go CaptureInApi):
//
//	{"api_key":"phc_...","batch":[{"type":"capture","uuid":...,"event":...,...}],"sent_at":"..."}
//
// Any 2xx means capture accepted the whole batch.
type HTTPTransport struct {
	Client *http.Client
	// Gzip compresses bodies (POST /batch/?compression=gzip, Content-Encoding: gzip).
	Gzip bool
	// UserAgent defaults to "llm-gateway".
	UserAgent string
	// Clock is the clock for sent_at (the wall clock when nil).
	Clock clock.Clock
}

// NewHTTPTransport returns a transport with a client whose timeout bounds one batch.
func NewHTTPTransport(timeout time.Duration) *HTTPTransport {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &HTTPTransport{Client: &http.Client{Timeout: timeout}}
}

// BatchBody renders the /batch/ request body: {"api_key":...,"batch":[events...],"sent_at":...}.
func BatchBody(apiKey string, events [][]byte, sentAt time.Time) []byte {
	n := 64 + len(apiKey)
	for _, e := range events {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"api_key":`...)
	b = jsonx.AppendString(b, apiKey)
	b = append(b, `,"batch":[`...)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	b = append(b, `],"sent_at":"`...)
	b = sentAt.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	return append(b, '"', '}')
}

func (t *HTTPTransport) Send(ctx context.Context, dest event.Destination, events [][]byte) error {
	clk := clock.Or(t.Clock)
	body := BatchBody(dest.APIKey, events, clk.Now())
	url := dest.Host + "/batch/"
	if t.Gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		zw.Close()
		body = buf.Bytes()
		url += "?compression=gzip"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return &SendError{Err: fmt.Errorf("build capture request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	ua := t.UserAgent
	if ua == "" {
		ua = event.Library
	}
	req.Header.Set("User-Agent", ua)
	if t.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	client := t.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return &SendError{Retryable: true, Err: err}
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	se := &SendError{Status: resp.StatusCode, Body: string(excerpt)}
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		se.Retryable = true
		se.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), clk.Now())
	}
	se.Err = errors.New(resp.Status)
	return se
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// FileTransport appends events to a JSONL file, one event per line exactly as it would be
// sent to capture: the standalone mode's "capture".
type FileTransport struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// NewFileTransport opens (creating) path for appending.
func NewFileTransport(path string) (*FileTransport, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create events file dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open events file %s: %w", path, err)
	}
	return &FileTransport{path: path, f: f}, nil
}

// Path is the events file.
func (t *FileTransport) Path() string { return t.path }

func (t *FileTransport) Send(_ context.Context, _ event.Destination, events [][]byte) error {
	n := 0
	for _, e := range events {
		n += len(e) + 1
	}
	buf := make([]byte, 0, n)
	for _, e := range events {
		buf = append(buf, e...)
		buf = append(buf, '\n')
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.f.Write(buf); err != nil {
		return &SendError{Retryable: true, Err: fmt.Errorf("write events file %s: %w", t.path, err)}
	}
	return nil
}

// Close closes the file.
func (t *FileTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.f.Close()
}
