package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// Shape is the API the load calls: OpenAI chat completions or Anthropic messages, with the
// request bodies it sends and the markers it reads responses by.
type Shape struct {
	Name     string // openai or anthropic
	Path     string // request path
	Model    string
	Provider string // the fake provider's name for it (POST /_fake/scenario?provider=)
	auth     func(h http.Header, key string)
	body     []byte // non-streaming request
	stream   []byte // streaming request
	okMarker []byte // in every successful non-streaming body
	content  []byte // in every text-delta stream event
	done     []byte // in the stream's terminal event
	errEvent []byte // starts an in-stream error
}

// ShapeNamed is the shape "openai" (POST /v1/chat/completions, gpt-4o) or "anthropic" (POST
// /v1/messages, claude-sonnet-4-5). Both ask for at most 256 output tokens.
func ShapeNamed(name string) (Shape, error) {
	const prompt = `"messages":[{"role":"user","content":"Write one short sentence about load testing."}]`
	switch name {
	case "openai":
		return Shape{Name: name, Path: "/v1/chat/completions", Model: "gpt-4o", Provider: "openai",
			auth:     func(h http.Header, key string) { h.Set("Authorization", "Bearer "+key) },
			body:     []byte(`{"model":"gpt-4o","max_tokens":256,` + prompt + `}`),
			stream:   []byte(`{"model":"gpt-4o","max_tokens":256,"stream":true,` + prompt + `}`),
			okMarker: []byte(`"choices":[`), content: []byte(`"delta":{"content":"`),
			done: []byte("data: [DONE]"), errEvent: []byte(`data: {"error"`)}, nil
	case "anthropic":
		return Shape{Name: name, Path: "/v1/messages", Model: "claude-sonnet-4-5", Provider: "anthropic",
			auth: func(h http.Header, key string) {
				h.Set("x-api-key", key)
				h.Set("anthropic-version", "2023-06-01")
			},
			body:     []byte(`{"model":"claude-sonnet-4-5","max_tokens":256,` + prompt + `}`),
			stream:   []byte(`{"model":"claude-sonnet-4-5","max_tokens":256,"stream":true,` + prompt + `}`),
			okMarker: []byte(`"content":[`), content: []byte(`"type":"content_block_delta"`),
			done: []byte(`"type":"message_stop"`), errEvent: []byte("event: error")}, nil
	}
	return Shape{}, fmt.Errorf("unknown shape %q (want openai or anthropic)", name)
}

// Target is one way to reach the fake upstream: directly, or through a gateway.
type Target struct {
	Name   string // direct, gateway, gateway-redis
	Base   string // scheme://host:port
	Key    string // API key the target accepts
	Shape  Shape
	Client *http.Client
}

// NewClient is an HTTP/1.1 client with a connection pool big enough for every concurrency
// the load uses (like one SDK client per caller, sharing keep-alive connections).
func NewClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

func (t *Target) request(ctx context.Context, stream bool) (*http.Request, error) {
	body := t.Shape.body
	if stream {
		body = t.Shape.stream
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Base+t.Shape.Path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request to %s: %w", t.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	t.Shape.auth(req.Header, t.Key)
	return req, nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Call makes one non-streaming call; an error unless it got a 200 with a complete body.
func (t *Target) Call(ctx context.Context) error {
	req, err := t.request(ctx, false)
	if err != nil {
		return err
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return fmt.Errorf("call %s: %w", t.Name, err)
	}
	defer resp.Body.Close()
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return fmt.Errorf("read %s response: %w", t.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("call %s: status %d: %.300s", t.Name, resp.StatusCode, buf.Bytes())
	}
	if !bytes.Contains(buf.Bytes(), t.Shape.okMarker) {
		return fmt.Errorf("call %s: 200 without %s: %.300s", t.Name, t.Shape.okMarker, buf.Bytes())
	}
	return nil
}

// StreamResult is one streaming call as the client saw it.
type StreamResult struct {
	TTFT   time.Duration   // from the scheduled start to the first text delta
	Gaps   []time.Duration // between consecutive text deltas
	Chunks int             // text deltas received
	Err    error           // non-200, error event, or no terminal event
	// Connected is from the scheduled start to a connection to the target: the part of TTFT
	// spent before the request could be sent (generator, kernel, the target's accept queue).
	Connected time.Duration
}

// Stream makes one streaming call and reads it to its terminal event, timing each text delta.
// want, when > 0, is the number of text deltas a complete stream has.
func (t *Target) Stream(ctx context.Context, scheduled time.Time, want int) StreamResult {
	var r StreamResult
	req, err := t.request(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { r.Connected = time.Since(scheduled) },
	}), true)
	if err != nil {
		r.Err = err
		return r
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		r.Err = fmt.Errorf("stream %s: %w", t.Name, err)
		return r
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		r.Err = fmt.Errorf("stream %s: status %d: %s", t.Name, resp.StatusCode, b)
		return r
	}
	br := bufio.NewReaderSize(resp.Body, 4096)
	var last time.Time
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case bytes.Contains(line, t.Shape.content):
			now := time.Now()
			if r.Chunks == 0 {
				r.TTFT = now.Sub(scheduled)
			} else {
				r.Gaps = append(r.Gaps, now.Sub(last))
			}
			last = now
			r.Chunks++
		case bytes.HasPrefix(line, t.Shape.errEvent):
			r.Err = fmt.Errorf("stream %s: error event after %d deltas", t.Name, r.Chunks)
			return r
		case bytes.Contains(line, t.Shape.done):
			if want > 0 && r.Chunks != want {
				r.Err = fmt.Errorf("stream %s: %d text deltas, want %d", t.Name, r.Chunks, want)
			}
			_, _ = io.Copy(io.Discard, br)
			return r
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a line longer than the buffer: its rest follows
		}
		if err != nil {
			r.Err = fmt.Errorf("stream %s ended without its terminal event after %d deltas: %w", t.Name, r.Chunks, err)
			return r
		}
	}
}
