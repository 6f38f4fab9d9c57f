// Package auth identifies the team behind a request: by its gateway API key (stored in the
// snapshot only as a SHA-256 digest) or by its product name.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

var (
	// ErrMissingKey: the request carries no API key.
	ErrMissingKey = errors.New("missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'")
	// ErrInvalidKey: the key is not one of the gateway's.
	ErrInvalidKey = errors.New("invalid API key")
)

// KeyHash is the binary SHA-256 of an API key.
type KeyHash [sha256.Size]byte

// HashKey returns the digest under which key is indexed.
func HashKey(key string) KeyHash { return sha256.Sum256([]byte(key)) }

// Hex returns the lowercase hex form used in the snapshot.
func (h KeyHash) Hex() string { return hex.EncodeToString(h[:]) }

// KeyFromHeader returns the API key of a request: 'Authorization: Bearer <key>' (OpenAI SDKs)
// or 'x-api-key: <key>' (Anthropic SDKs). fromAPIKeyHeader says which one was used.
func KeyFromHeader(h http.Header) (key string, fromAPIKeyHeader bool) {
	if v := h.Get("Authorization"); v != "" {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:]), false
		}
		return "", false
	}
	return strings.TrimSpace(h.Get("X-Api-Key")), true
}

type entry struct {
	hash KeyHash
	team *snapshot.Team
}

// Index maps key digests and product names to teams. Built once per snapshot; safe for
// concurrent reads.
type Index struct {
	byKey     map[KeyHash]entry
	byProduct map[string]*snapshot.Team
	byName    map[string]*snapshot.Team
}

// New indexes the teams of s. The snapshot has been validated, so hashes are well formed.
func New(s *snapshot.Snapshot) *Index {
	ix := &Index{
		byKey:     map[KeyHash]entry{},
		byProduct: map[string]*snapshot.Team{},
		byName:    make(map[string]*snapshot.Team, len(s.Teams)),
	}
	for i := range s.Teams {
		t := &s.Teams[i]
		ix.byName[t.Name] = t
		for _, h := range t.APIKeyHashes {
			var kh KeyHash
			if n, err := hex.Decode(kh[:], []byte(h)); err != nil || n != len(kh) {
				continue
			}
			ix.byKey[kh] = entry{hash: kh, team: t}
		}
		for _, p := range t.Products {
			ix.byProduct[p] = t
		}
	}
	return ix
}

// Lookup returns the team owning the key digest. The map finds the candidate; the stored
// digest is then compared in constant time so that timing reveals nothing about near misses.
func (ix *Index) Lookup(h KeyHash) (*snapshot.Team, bool) {
	e, ok := ix.byKey[h]
	if !ok || subtle.ConstantTimeCompare(e.hash[:], h[:]) != 1 {
		return nil, false
	}
	return e.team, true
}

// Authenticate returns the team of the request's API key.
func (ix *Index) Authenticate(key string) (*snapshot.Team, error) {
	if key == "" {
		return nil, ErrMissingKey
	}
	t, ok := ix.Lookup(HashKey(key))
	if !ok {
		return nil, ErrInvalidKey
	}
	return t, nil
}

// Product returns the team that owns a product name.
func (ix *Index) Product(name string) (*snapshot.Team, bool) {
	t, ok := ix.byProduct[name]
	return t, ok
}

// Team returns a team by name.
func (ix *Index) Team(name string) (*snapshot.Team, bool) {
	t, ok := ix.byName[name]
	return t, ok
}
