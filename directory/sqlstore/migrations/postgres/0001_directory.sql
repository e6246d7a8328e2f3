-- Organisations, users, memberships, credentials, clients and the
-- hash-chained audit log. Times are Unix microseconds (UTC), as on SQLite,
-- so that they round-trip exactly; lists and maps are JSON text. Identifiers
-- use the "C" collation so that ORDER BY agrees with SQLite's byte order.

CREATE TABLE organisations (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	ods_code   TEXT COLLATE "C" NOT NULL UNIQUE,
	name       TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE users (
	id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	email         TEXT   NOT NULL,
	email_key     TEXT COLLATE "C" NOT NULL UNIQUE,
	given_name    TEXT   NOT NULL,
	family_name   TEXT   NOT NULL,
	status        TEXT   NOT NULL,
	disabled_note TEXT   NOT NULL,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL
);

CREATE TABLE memberships (
	user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	org_id     TEXT COLLATE "C" NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	roles      TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, org_id)
);

CREATE INDEX memberships_org ON memberships (org_id);

CREATE TABLE credentials (
	id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	type         TEXT COLLATE "C" NOT NULL,
	name         TEXT   NOT NULL,
	secret       BYTEA  NOT NULL,
	created_at   BIGINT NOT NULL,
	last_used_at BIGINT
);

CREATE INDEX credentials_user_type ON credentials (user_id, type);

CREATE TABLE clients (
	id                        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	org_id                    TEXT COLLATE "C" NOT NULL REFERENCES organisations (id),
	name                      TEXT    NOT NULL,
	public                    BOOLEAN NOT NULL,
	secret_hash               TEXT    NOT NULL,
	redirect_uris             TEXT    NOT NULL,
	post_logout_redirect_uris TEXT    NOT NULL,
	created_at                BIGINT  NOT NULL
);

CREATE INDEX clients_org ON clients (org_id);

CREATE TABLE audit_events (
	seq       BIGINT NOT NULL PRIMARY KEY,
	at        BIGINT NOT NULL,
	actor     TEXT   NOT NULL,
	action    TEXT   NOT NULL,
	target    TEXT   NOT NULL,
	org_id    TEXT   NOT NULL,
	ip        TEXT   NOT NULL,
	outcome   TEXT   NOT NULL,
	detail    TEXT   NOT NULL,
	prev_hash BYTEA  NOT NULL,
	hash      BYTEA  NOT NULL
);

-- The last appended event, kept apart so that deleting the newest events is
-- detected. Appenders lock this row with SELECT ... FOR UPDATE.
CREATE TABLE audit_head (
	id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  BIGINT  NOT NULL,
	hash BYTEA   NOT NULL
);

INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ''::bytea);
