package auth

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

func testSnapshot() *snapshot.Snapshot {
	return &snapshot.Snapshot{Teams: []snapshot.Team{
		{Name: "alpha", APIKeyHashes: []string{snapshot.HashAPIKey("key-a1"), snapshot.HashAPIKey("key-a2")}, Products: []string{"max"}},
		{Name: "beta", APIKeyHashes: []string{snapshot.HashAPIKey("key-b")}},
	}}
}

func TestAuthenticate(t *testing.T) {
	ix := New(testSnapshot())
	for _, tc := range []struct {
		key, team string
		err       error
	}{
		{"key-a1", "alpha", nil},
		{"key-a2", "alpha", nil},
		{"key-b", "beta", nil},
		{"key-c", "", ErrInvalidKey},
		{"key-a", "", ErrInvalidKey},
		{"", "", ErrMissingKey},
	} {
		team, err := ix.Authenticate(tc.key)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, tc.key)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.team, team.Name)
	}
	team, ok := ix.Product("max")
	require.True(t, ok)
	require.Equal(t, "alpha", team.Name)
	_, ok = ix.Product("other")
	require.False(t, ok)
}

func TestKeyFromHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
		key    string
		apiKey bool
	}{
		{"bearer", http.Header{"Authorization": {"Bearer sk-1"}}, "sk-1", false},
		{"bearer lowercase", http.Header{"Authorization": {"bearer sk-1"}}, "sk-1", false},
		{"x-api-key", http.Header{"X-Api-Key": {"sk-2"}}, "sk-2", true},
		{"basic is not a key", http.Header{"Authorization": {"Basic abc"}}, "", false},
		{"none", http.Header{}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, apiKey := KeyFromHeader(tc.header)
			require.Equal(t, tc.key, key)
			require.Equal(t, tc.apiKey, apiKey)
		})
	}
}
