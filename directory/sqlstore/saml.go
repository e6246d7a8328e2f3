package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lanyard/lanyard/directory"
)

// checkServiceProvider validates sp and returns it with its name trimmed.
func checkServiceProvider(sp directory.ServiceProvider) (directory.ServiceProvider, error) {
	err := checkID("service provider", sp.ID)
	if err == nil {
		err = checkID("organisation", sp.OrgID)
	}
	if err == nil {
		err = directory.CheckEntityID(sp.EntityID)
	}
	if err == nil {
		sp.Name, err = directory.CheckName("service provider name", sp.Name)
	}
	if err == nil && len(sp.Metadata) == 0 {
		err = fmt.Errorf("%w: service provider metadata must not be empty", directory.ErrInvalid)
	}
	if err == nil {
		err = directory.CheckNameIDFormat(sp.NameIDFormat)
	}
	if err == nil {
		err = directory.CheckSAMLAttributes(sp.Attributes)
	}
	return sp, err
}

// CreateServiceProvider stores sp with its name trimmed. The metadata is
// stored as given: checking it (package saml) is the registering caller's
// job. Errors wrap directory.ErrInvalid for an empty ID or organisation ID,
// a malformed entity ID, an empty name or metadata, or an unknown NameID
// format or attribute; directory.ErrNotFound when the organisation does not
// exist; and directory.ErrConflict when the ID or entity ID is taken.
func (s *Store) CreateServiceProvider(ctx context.Context, sp directory.ServiceProvider) error {
	sp, err := checkServiceProvider(sp)
	if err != nil {
		return fmt.Errorf("create service provider: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO service_providers (`+spColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		sp.ID, sp.EntityID, sp.OrgID, sp.Name, sp.Metadata, sp.NameIDFormat, encodeList(sp.Attributes), micros(sp.CreatedAt))
	if err != nil {
		return fmt.Errorf("create service provider %q of organisation %q: %w", sp.EntityID, sp.OrgID, translate(err))
	}
	return nil
}

const spColumns = `id, entity_id, org_id, name, metadata, nameid_format, attributes, created_at`

// scanServiceProvider reads a service provider from a *sql.Row or *sql.Rows.
func scanServiceProvider(row interface{ Scan(...any) error }) (directory.ServiceProvider, error) {
	var (
		sp      directory.ServiceProvider
		attrs   string
		created int64
	)
	if err := row.Scan(&sp.ID, &sp.EntityID, &sp.OrgID, &sp.Name, &sp.Metadata, &sp.NameIDFormat, &attrs, &created); err != nil {
		return directory.ServiceProvider{}, err
	}
	if err := decodeList(attrs, &sp.Attributes); err != nil {
		return directory.ServiceProvider{}, fmt.Errorf("attributes: %w", err)
	}
	sp.CreatedAt = fromMicros(created)
	return sp, nil
}

// ServiceProvider returns the service provider whose SAML entity ID is
// entityID (compared exactly); the error wraps directory.ErrNotFound when
// there is none.
func (s *Store) ServiceProvider(ctx context.Context, entityID string) (directory.ServiceProvider, error) {
	sp, err := scanServiceProvider(s.queryRow(ctx, `SELECT `+spColumns+` FROM service_providers WHERE entity_id = ?`, entityID))
	if errors.Is(err, sql.ErrNoRows) {
		return sp, fmt.Errorf("service provider %q: %w", entityID, directory.ErrNotFound)
	} else if err != nil {
		return sp, fmt.Errorf("read service provider %q: %w", entityID, err)
	}
	return sp, nil
}

// ServiceProvidersByOrg returns the organisation's service providers
// ordered by entity ID: none, and no error, when it has none or does not
// exist.
func (s *Store) ServiceProvidersByOrg(ctx context.Context, orgID string) ([]directory.ServiceProvider, error) {
	rows, err := s.query(ctx, `SELECT `+spColumns+` FROM service_providers WHERE org_id = ? ORDER BY entity_id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("read service providers of organisation %q: %w", orgID, err)
	}
	defer rows.Close()
	var sps []directory.ServiceProvider
	for rows.Next() {
		sp, err := scanServiceProvider(rows)
		if err != nil {
			return nil, fmt.Errorf("read service providers of organisation %q: %w", orgID, err)
		}
		sps = append(sps, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read service providers of organisation %q: %w", orgID, err)
	}
	return sps, nil
}
