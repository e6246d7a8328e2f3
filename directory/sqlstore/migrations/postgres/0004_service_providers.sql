-- SAML service providers. metadata is the SP's metadata XML exactly as
-- given (bytes, so that it round-trips whatever its encoding); attributes
-- is a JSON list. Times are Unix microseconds (UTC) as in 0001.

CREATE TABLE service_providers (
	id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	entity_id     TEXT COLLATE "C" NOT NULL UNIQUE,
	org_id        TEXT COLLATE "C" NOT NULL REFERENCES organisations (id),
	name          TEXT   NOT NULL,
	metadata      BYTEA  NOT NULL,
	nameid_format TEXT   NOT NULL,
	attributes    TEXT   NOT NULL,
	created_at    BIGINT NOT NULL
);

CREATE INDEX service_providers_org ON service_providers (org_id, entity_id);
