package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lanyard/lanyard/directory"
)

// SAML service providers.

// serviceProvider returns a service provider of org-1 with every field set.
func serviceProvider(id, entityID string) directory.ServiceProvider {
	return directory.ServiceProvider{
		ID:           id,
		EntityID:     entityID,
		OrgID:        "org-1",
		Name:         "Service " + id,
		Metadata:     []byte(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="` + entityID + `"/>` + "\x00\xff"),
		NameIDFormat: directory.NameIDPersistent,
		Attributes:   []string{"roles", "email", "odsCode"},
		CreatedAt:    base.Add(123 * time.Microsecond),
	}
}

func mustCreateSP(t *testing.T, s directory.Store, sps ...directory.ServiceProvider) {
	t.Helper()
	for _, sp := range sps {
		if err := s.CreateServiceProvider(t.Context(), sp); err != nil {
			t.Fatalf("CreateServiceProvider(%q): %v", sp.EntityID, err)
		}
	}
}

func testSPCreateGet(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	full := serviceProvider("sp-1", "https://rota.example.nhs.uk/saml")
	full.CreatedAt = time.Date(2031, time.March, 4, 1, 2, 3, 456789000, time.FixedZone("UTC+05:45", 5*3600+45*60))
	bare := serviceProvider("sp-2", "urn:example:bare")
	bare.NameIDFormat, bare.Attributes = directory.NameIDEmail, nil
	trimmed := serviceProvider("sp-3", "urn:example:trimmed")
	trimmed.Name = "  Padded name\t"
	mustCreateSP(t, s, full, bare, trimmed)
	trimmed.Name = "Padded name"
	for _, want := range []directory.ServiceProvider{full, bare, trimmed} {
		got, err := s.ServiceProvider(ctx, want.EntityID)
		if err != nil {
			t.Errorf("ServiceProvider(%q): %v", want.EntityID, err)
			continue
		}
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			t.Errorf("ServiceProvider(%q) mismatch (-want +got):\n%s", want.EntityID, diff)
		}
	}
}

func testSPDuplicate(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	mustCreateOrg(t, s, org("org-2", "A81001"))
	first := serviceProvider("sp-1", "https://rota.example.nhs.uk/saml")
	mustCreateSP(t, s, first)
	sameEntity := serviceProvider("sp-2", first.EntityID)
	sameEntity.OrgID = "org-2"
	wantErr(t, "CreateServiceProvider(same entity ID)", s.CreateServiceProvider(ctx, sameEntity), directory.ErrConflict)
	wantErr(t, "CreateServiceProvider(same ID)", s.CreateServiceProvider(ctx, serviceProvider("sp-1", "urn:example:other")), directory.ErrConflict)
	if got, err := s.ServiceProvider(ctx, first.EntityID); err != nil || got.ID != "sp-1" || got.OrgID != "org-1" {
		t.Errorf("ServiceProvider(%q) = %q of %q, %v; want the original", first.EntityID, got.ID, got.OrgID, err)
	}
	if got, err := s.ServiceProvidersByOrg(ctx, "org-2"); err != nil || len(got) != 0 {
		t.Errorf("ServiceProvidersByOrg(org-2) = %d, %v; want none", len(got), err)
	}
}

func testSPUnknownOrg(t *testing.T, s directory.Store) {
	ctx := t.Context()
	sp := serviceProvider("sp-1", "urn:example:sp")
	sp.OrgID = "org-9"
	wantErr(t, "CreateServiceProvider(unknown organisation)", s.CreateServiceProvider(ctx, sp), directory.ErrNotFound)
	_, err := s.ServiceProvider(ctx, sp.EntityID)
	wantErr(t, "ServiceProvider after a refused create", err, directory.ErrNotFound)
}

func testSPMissing(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	mustCreateSP(t, s, serviceProvider("sp-1", "https://rota.example.nhs.uk/saml"))
	for _, id := range []string{"", "urn:example:missing", "https://ROTA.example.nhs.uk/saml", "https://rota.example.nhs.uk/saml/"} {
		_, err := s.ServiceProvider(ctx, id)
		wantErr(t, fmt.Sprintf("ServiceProvider(%q)", id), err, directory.ErrNotFound)
	}
}

func testSPsByOrg(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	mustCreateOrg(t, s, org("org-2", "A81001"))
	c := serviceProvider("sp-c", "urn:example:c")
	a := serviceProvider("sp-z", "https://a.example.nhs.uk/saml")
	upper := serviceProvider("sp-u", "Urn:example:B") // byte order: upper case first
	other := serviceProvider("sp-o", "urn:example:other")
	other.OrgID = "org-2"
	mustCreateSP(t, s, c, a, upper, other)
	got, err := s.ServiceProvidersByOrg(ctx, "org-1")
	if err != nil {
		t.Fatalf("ServiceProvidersByOrg(org-1): %v", err)
	}
	if diff := cmp.Diff([]directory.ServiceProvider{upper, a, c}, got, equateEmpty); diff != "" {
		t.Errorf("ServiceProvidersByOrg(org-1) mismatch (-want +got):\n%s", diff)
	}
	if got, err := s.ServiceProvidersByOrg(ctx, "org-9"); err != nil || len(got) != 0 {
		t.Errorf("ServiceProvidersByOrg(org-9) = %v, %v; want none and no error", got, err)
	}
}

func testSPInvalid(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	for _, tc := range []struct {
		name   string
		change func(*directory.ServiceProvider)
	}{
		{"empty ID", func(sp *directory.ServiceProvider) { sp.ID = "" }},
		{"empty organisation", func(sp *directory.ServiceProvider) { sp.OrgID = "" }},
		{"empty entity ID", func(sp *directory.ServiceProvider) { sp.EntityID = "" }},
		{"entity ID with a space", func(sp *directory.ServiceProvider) { sp.EntityID = "urn:example: sp" }},
		{"long entity ID", func(sp *directory.ServiceProvider) {
			sp.EntityID = "urn:" + string(make([]byte, directory.MaxEntityIDLen))
		}},
		{"empty name", func(sp *directory.ServiceProvider) { sp.Name = " " }},
		{"empty metadata", func(sp *directory.ServiceProvider) { sp.Metadata = nil }},
		{"empty NameID format", func(sp *directory.ServiceProvider) { sp.NameIDFormat = "" }},
		{"unknown NameID format", func(sp *directory.ServiceProvider) { sp.NameIDFormat = "transient" }},
		{"unknown attribute", func(sp *directory.ServiceProvider) { sp.Attributes = []string{"email", "nhsNumber"} }},
		{"repeated attribute", func(sp *directory.ServiceProvider) { sp.Attributes = []string{"email", "roles", "email"} }},
	} {
		sp := serviceProvider("sp-1", "urn:example:sp")
		tc.change(&sp)
		wantErr(t, fmt.Sprintf("CreateServiceProvider(%s)", tc.name), s.CreateServiceProvider(ctx, sp), directory.ErrInvalid)
	}
	if got, err := s.ServiceProvidersByOrg(ctx, "org-1"); err != nil || len(got) != 0 {
		t.Errorf("ServiceProvidersByOrg after refused creates = %d, %v; want none", len(got), err)
	}
}
