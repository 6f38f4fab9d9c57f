// Package recordtest has a record.CallRecorder for tests that keeps every call in memory.
package recordtest

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/record"
)

// Memory keeps a copy of every recorded call. Safe for concurrent use.
type Memory struct {
	mu    sync.Mutex
	calls []record.Call
}

// Record implements record.CallRecorder.
func (m *Memory) Record(c *record.Call) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := *c
	cp.Attempts = append([]record.Attempt(nil), c.Attempts...)
	m.calls = append(m.calls, cp)
}

// Calls returns a copy of the calls recorded so far, oldest first.
func (m *Memory) Calls() []record.Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]record.Call(nil), m.calls...)
}

// Last returns the newest recorded call; it fails the test when there is none.
func (m *Memory) Last(t testing.TB) record.Call {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	require.NotEmpty(t, m.calls, "no call was recorded")
	return m.calls[len(m.calls)-1]
}
