// Package faults is the failover fault-injection suite (docs/faults.md): every upstream fault
// the fake provider can produce, applied to the primary backend of a route, called through an
// in-process gateway with the official OpenAI and Anthropic SDKs, with the client-visible
// result, the backends tried, the circuit state and the recorded events asserted per cell.
// The package also holds the failover benchmarks. It has no non-test code.
package faults
