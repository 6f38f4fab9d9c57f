package faults

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

// benchCall is one raw HTTP call of an operation, to the gateway or straight to a fake.
type benchCall struct {
	path   string
	body   string
	header http.Header
}

func benchCallFor(op provider.Operation, stream bool) benchCall {
	s := fmt.Sprint(stream)
	h := http.Header{"Content-Type": {"application/json"}}
	switch op {
	case provider.OpMessages:
		h.Set("Anthropic-Version", "2023-06-01")
		h.Set("X-Api-Key", teamKey) // the fake accepts any key
		return benchCall{"/v1/messages", `{"model":"` + claudeModel + `","max_tokens":100,"stream":` + s +
			`,"messages":[{"role":"user","content":"` + prompt + `"}]}`, h}
	default:
		h.Set("Authorization", "Bearer "+teamKey)
		return benchCall{"/v1/chat/completions", `{"model":"` + gptModel + `","stream":` + s +
			`,"messages":[{"role":"user","content":"` + prompt + `"}]}`, h}
	}
}

// do sends the call to base and reads the whole response. It returns when the response
// headers arrived and when the first line holding marker did (zero when marker is "").
func (bc benchCall) do(tb testing.TB, client *http.Client, base, marker string) (headers, first time.Duration) {
	req, err := http.NewRequest(http.MethodPost, base+bc.path, strings.NewReader(bc.body))
	require.NoError(tb, err)
	req.Header = bc.header.Clone()
	start := time.Now()
	resp, err := client.Do(req)
	require.NoError(tb, err)
	headers = time.Since(start)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		tb.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if marker != "" {
		r := bufio.NewReader(resp.Body)
		for first == 0 {
			line, err := r.ReadBytes('\n')
			if bytes.Contains(line, []byte(marker)) {
				first = time.Since(start)
			}
			require.NoError(tb, err, "the stream ended before %q", marker)
		}
		_, err = io.Copy(io.Discard, r)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	require.NoError(tb, err)
	return headers, first
}

// BenchmarkFailover measures what a failover adds to a call: the primary answers 503 at once
// and the secondary serves ("failover"), against the same call served by that secondary as
// the route's first target ("direct"). Each iteration makes one call of each, alternately,
// so that the noise of a shared machine hits both alike; direct_p50_µs, failover_p50_µs and
// added_p50_µs (their difference) are the medians. The primary's circuit never opens here,
// so every failover call makes both attempts. Budget admission and settlement (in memory)
// included, no recorder.
func BenchmarkFailover(b *testing.B) {
	never := func(s *snapshot.Snapshot) {
		for i := range s.Backends {
			s.Backends[i].CircuitBreaker.ConsecutiveFailures = 1 << 30
		}
	}
	for _, tc := range []struct {
		name     string
		op       provider.Operation
		failover pair
		direct   pair
	}{
		{"anthropic-to-bedrock", provider.OpMessages, pair{fakeprovider.Anthropic, fakeprovider.Bedrock}, pair{fakeprovider.Bedrock, fakeprovider.Anthropic}},
		{"openai-to-azure", provider.OpChatCompletions, pair{fakeprovider.OpenAI, fakeprovider.Azure}, pair{fakeprovider.Azure, fakeprovider.OpenAI}},
	} {
		for _, stream := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/stream=%t", tc.name, stream), func(b *testing.B) {
				direct := newCell(b, tc.direct, cellOptions{mutate: never})
				failover := newCell(b, tc.failover, cellOptions{mutate: never, primary: &fakeprovider.Scenario{Status: http.StatusServiceUnavailable}})
				call := benchCallFor(tc.op, stream)
				timed := func(c *cell) time.Duration {
					start := time.Now()
					_, _ = call.do(b, c.client, c.gwSrv.URL, "")
					return time.Since(start)
				}
				timed(direct) // warm the connections
				timed(failover)
				d, f := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					d = append(d, timed(direct))
					f = append(f, timed(failover))
				}
				b.StopTimer()
				dp, fp := median(d), median(f)
				b.ReportMetric(float64(dp.Microseconds()), "direct_p50_µs")
				b.ReportMetric(float64(fp.Microseconds()), "failover_p50_µs")
				b.ReportMetric(float64((fp - dp).Microseconds()), "added_p50_µs")
				// Every direct call was served by the route's first target; every failover
				// call tried the primary, then the secondary.
				require.Equal(b, [2]int{b.N + 1, 0}, [2]int{direct.primary.requests(), direct.secondary.requests()})
				require.Equal(b, [2]int{b.N + 1, b.N + 1}, [2]int{failover.primary.requests(), failover.secondary.requests()})
			})
		}
	}
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkTimeToFirstToken measures the first-chunk gate: the gateway holds the status and
// headers until the first upstream event is parsed (so that an error as the first event can
// still fail over). A paced stream (8 deltas, 2 ms apart; the first event after 0 or 20 ms)
// is read through the gateway and straight from the fake provider. ttft_p50_µs/ttft_p90_µs:
// time until the first text delta reached the client; headers_p50_µs: until the response
// headers did.
func BenchmarkTimeToFirstToken(b *testing.B) {
	for _, tc := range []struct {
		name string
		op   provider.Operation
		p    pair
	}{
		{"anthropic", provider.OpMessages, pair{fakeprovider.Anthropic, fakeprovider.Bedrock}},
		{"openai", provider.OpChatCompletions, pair{fakeprovider.OpenAI, fakeprovider.Azure}},
	} {
		for _, delayMs := range []int64{0, 20} {
			for _, via := range []string{"direct", "gateway"} {
				b.Run(fmt.Sprintf("%s/first-event-after=%dms/%s", tc.name, delayMs, via), func(b *testing.B) {
					c := newCell(b, tc.p, cellOptions{chunkIntervalMs: 2, primary: &fakeprovider.Scenario{Chunks: 8, FirstByteDelayMs: delayMs}})
					base := c.gwSrv.URL
					if via == "direct" {
						base = c.primary.srv.URL
					}
					call := benchCallFor(tc.op, true)
					const marker = `"Prim"` // the first delta of primaryText split in 8
					call.do(b, c.client, base, marker)
					hs, ts := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
					b.ResetTimer()
					for range b.N {
						h, t := call.do(b, c.client, base, marker)
						hs, ts = append(hs, h), append(ts, t)
					}
					b.StopTimer()
					b.ReportMetric(float64(median(hs).Microseconds()), "headers_p50_µs")
					b.ReportMetric(float64(median(ts).Microseconds()), "ttft_p50_µs")
					b.ReportMetric(float64(ts[len(ts)*9/10].Microseconds()), "ttft_p90_µs") // median sorted ts
				})
			}
		}
	}
}
