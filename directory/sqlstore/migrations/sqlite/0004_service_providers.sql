-- SAML service providers. metadata is the SP's metadata XML exactly as
-- given; attributes is a JSON list. Times are Unix microseconds (UTC) as
-- in 0001.

CREATE TABLE service_providers (
	id            TEXT    NOT NULL PRIMARY KEY,
	entity_id     TEXT    NOT NULL UNIQUE,
	org_id        TEXT    NOT NULL REFERENCES organisations (id),
	name          TEXT    NOT NULL,
	metadata      BLOB    NOT NULL,
	nameid_format TEXT    NOT NULL,
	attributes    TEXT    NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX service_providers_org ON service_providers (org_id, entity_id);
