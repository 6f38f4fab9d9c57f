package snapshot

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// Normalize must not reorder lists it shares with its caller: a route whose failover classes
// are the package's own AllFailoverClasses leaves that list in documentation order.
func TestNormalizeDoesNotReorderSharedLists(t *testing.T) {
	before := slices.Clone(AllFailoverClasses)
	models := []string{"b", "a"}
	s := Snapshot{Routes: []Route{{Name: "r", Models: models, Failover: Failover{On: AllFailoverClasses}}}}
	s.Normalize()
	require.Equal(t, before, AllFailoverClasses)
	require.Equal(t, []string{"b", "a"}, models)
	require.Equal(t, []string{"a", "b"}, s.Routes[0].Models)
	require.True(t, slices.IsSorted(s.Routes[0].Failover.On))
}
