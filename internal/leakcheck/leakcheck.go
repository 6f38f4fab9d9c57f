// Package leakcheck is goleak's VerifyTestMain for suites whose HTTP clients use the shared
// http.DefaultTransport (the official SDKs do): keep-alive connections still idle in that pool
// when the last test ends are the pool's, not a leak, so they are closed before the check. A
// connection still in use, or any other goroutine left running, still fails the suite.
package leakcheck

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// VerifyTestMain runs the tests, then fails the run if goroutines leaked.
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
