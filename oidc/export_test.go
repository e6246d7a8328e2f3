package oidc

import (
	"math"
	"testing"
)

// AlwaysOverlap makes every token request commit its refresh token's
// rotation beside the ID token's signature, however many are in flight,
// until the test ends. Tests that use it must not run in parallel.
func AlwaysOverlap(t testing.TB) {
	old := overlapLimit
	overlapLimit = func() int64 { return math.MaxInt64 }
	t.Cleanup(func() { overlapLimit = old })
}
