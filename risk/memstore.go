package risk

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/lanyard/lanyard/directory"
)

// MemStore keeps profiles in memory: for replay, the evaluation harness
// and tests. It is safe for concurrent use and knows no organisation
// thresholds.
type MemStore struct {
	mu       sync.Mutex
	profiles map[string]directory.RiskProfile
	pops     map[string]directory.RiskPopulation
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{profiles: map[string]directory.RiskProfile{}, pops: map[string]directory.RiskPopulation{}}
}

// RiskProfile returns the user's profile or an error wrapping directory.ErrNotFound.
func (m *MemStore) RiskProfile(_ context.Context, userID string) (directory.RiskProfile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.profiles[userID]
	if !ok {
		return p, fmt.Errorf("risk profile of %q: %w", userID, directory.ErrNotFound)
	}
	return p, nil
}

// PutRiskProfile stores a copy of p.
func (m *MemStore) PutRiskProfile(_ context.Context, p directory.RiskProfile) error {
	if len(p.Data) == 0 || len(p.Data) > directory.MaxRiskProfileSize {
		return fmt.Errorf("%w: risk profile of %d bytes", directory.ErrInvalid, len(p.Data))
	}
	p.Data = slices.Clone(p.Data)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.profiles[p.UserID] = p
	return nil
}

// RiskPopulation returns the population profile or an error wrapping directory.ErrNotFound.
func (m *MemStore) RiskPopulation(_ context.Context, key string) (directory.RiskPopulation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pops[key]
	if !ok {
		return p, fmt.Errorf("risk population %q: %w", key, directory.ErrNotFound)
	}
	return p, nil
}

// PutRiskPopulation stores a copy of p.
func (m *MemStore) PutRiskPopulation(_ context.Context, p directory.RiskPopulation) error {
	if len(p.Data) == 0 || len(p.Data) > directory.MaxRiskProfileSize {
		return fmt.Errorf("%w: risk population of %d bytes", directory.ErrInvalid, len(p.Data))
	}
	p.Data = slices.Clone(p.Data)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pops[p.Key] = p
	return nil
}

// RiskPolicy returns the zero policy: the national thresholds apply.
func (m *MemStore) RiskPolicy(context.Context, string) (directory.RiskPolicy, error) {
	return directory.RiskPolicy{}, nil
}

// ProfileSizes returns the encoded size of every user profile held.
func (m *MemStore) ProfileSizes() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int, 0, len(m.profiles))
	for _, p := range m.profiles {
		out = append(out, len(p.Data))
	}
	return out
}
