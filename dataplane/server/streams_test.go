package server

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStreamRegistry(t *testing.T) {
	counts := map[string]int{}
	r := NewStreamRegistry(func(team string, n int) { counts[team] = n })
	ctxA1, cancelA1 := context.WithCancelCause(context.Background())
	ctxA2, cancelA2 := context.WithCancelCause(context.Background())
	ctxB, cancelB := context.WithCancelCause(context.Background())
	removeA1 := r.Add("a", "r1", cancelA1)
	removeA2 := r.Add("a", "r2", cancelA2)
	removeB := r.Add("b", "r3", cancelB)
	require.Equal(t, map[string]int{"a": 2, "b": 1}, r.Counts())
	require.Equal(t, 2, counts["a"])

	require.Equal(t, 2, r.KillTeam("a", ErrSuspended))
	require.ErrorIs(t, context.Cause(ctxA1), ErrSuspended)
	require.ErrorIs(t, context.Cause(ctxA2), ErrSuspended)
	require.NoError(t, ctxB.Err())

	removeA1()
	removeA1() // idempotent
	removeA2()
	require.Equal(t, map[string]int{"b": 1}, r.Counts())
	require.Equal(t, 0, counts["a"])

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.Error(t, r.Wait(ctx), "b is still open")

	require.Equal(t, 1, r.KillAll(ErrDraining))
	require.ErrorIs(t, context.Cause(ctxB), ErrDraining)
	removeB()
	require.NoError(t, r.Wait(context.Background()))
	require.Equal(t, 0, r.Len())
}
