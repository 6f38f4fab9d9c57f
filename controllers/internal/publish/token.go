/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package publish

import (
	"crypto/sha256"
	"crypto/subtle"
	"maps"
	"slices"
	"sync"
)

// MinTokenBytes is the shortest token accepted: shorter ones are refused as guessable.
const MinTokenBytes = 32

// Tokens is the set of bearer tokens gateway pods may present, one per client (a gateway
// Deployment, named by the Secret that holds its token). Only SHA-256 digests are kept. Safe
// for concurrent use; the zero value accepts nothing.
type Tokens struct {
	mu      sync.RWMutex
	clients []clientDigest
}

type clientDigest struct {
	name   string
	digest [sha256.Size]byte
}

// Set replaces the tokens: client name -> token. Tokens shorter than MinTokenBytes are left
// out; their clients are returned (so the caller can say so, without the token).
func (t *Tokens) Set(tokens map[string][]byte) (refused []string) {
	clients := make([]clientDigest, 0, len(tokens))
	for _, name := range slices.Sorted(maps.Keys(tokens)) {
		if len(tokens[name]) < MinTokenBytes {
			refused = append(refused, name)
			continue
		}
		clients = append(clients, clientDigest{name: name, digest: sha256.Sum256(tokens[name])})
	}
	t.mu.Lock()
	t.clients = clients
	t.mu.Unlock()
	return refused
}

// Clients returns the names of the clients with a token.
func (t *Tokens) Clients() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, len(t.clients))
	for i, c := range t.clients {
		out[i] = c.name
	}
	return out
}

// Match returns the client whose token was presented. It compares digests of equal length in
// constant time and always compares against every client, so neither the token's length nor
// which client matched shows in the time it takes.
func (t *Tokens) Match(presented []byte) (string, bool) {
	if t == nil || len(presented) == 0 {
		return "", false
	}
	d := sha256.Sum256(presented)
	t.mu.RLock()
	defer t.mu.RUnlock()
	match := -1
	for i := range t.clients {
		eq := subtle.ConstantTimeCompare(d[:], t.clients[i].digest[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return "", false
	}
	return t.clients[match].name, true
}
