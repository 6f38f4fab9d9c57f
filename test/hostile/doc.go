// Package hostile is the hostile-client suite (docs/security.md): a table of requests an
// attacker inside the cluster could send, each sent to bin/gateway running as a process with
// the fake provider (test/fakeprovider) and a fake legacy gateway behind it. Every case
// asserts the status and the error shape in the caller's protocol, that nothing reached an
// upstream it must not reach (the upstreams' request logs), that the process is alive, and
// that its goroutines, open file descriptors and resident memory return to the baseline
// measured before the first case. The package has no non-test code.
package hostile
