-- Organisations, users, memberships, credentials, clients and the
-- hash-chained audit log. Times are Unix microseconds (UTC); booleans are
-- 0 or 1; lists and maps are JSON text.

CREATE TABLE organisations (
	id         TEXT    NOT NULL PRIMARY KEY,
	ods_code   TEXT    NOT NULL UNIQUE,
	name       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
	id            TEXT    NOT NULL PRIMARY KEY,
	email         TEXT    NOT NULL,
	email_key     TEXT    NOT NULL UNIQUE,
	given_name    TEXT    NOT NULL,
	family_name   TEXT    NOT NULL,
	status        TEXT    NOT NULL,
	disabled_note TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	org_id     TEXT    NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	roles      TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, org_id)
) STRICT;

CREATE INDEX memberships_org ON memberships (org_id);

CREATE TABLE credentials (
	id           TEXT    NOT NULL PRIMARY KEY,
	user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	type         TEXT    NOT NULL,
	name         TEXT    NOT NULL,
	secret       BLOB    NOT NULL,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER
) STRICT;

CREATE INDEX credentials_user_type ON credentials (user_id, type);

CREATE TABLE clients (
	id                        TEXT    NOT NULL PRIMARY KEY,
	org_id                    TEXT    NOT NULL REFERENCES organisations (id),
	name                      TEXT    NOT NULL,
	public                    INTEGER NOT NULL CHECK (public IN (0, 1)),
	secret_hash               TEXT    NOT NULL,
	redirect_uris             TEXT    NOT NULL,
	post_logout_redirect_uris TEXT    NOT NULL,
	created_at                INTEGER NOT NULL
) STRICT;

CREATE INDEX clients_org ON clients (org_id);

CREATE TABLE audit_events (
	seq       INTEGER NOT NULL PRIMARY KEY,
	at        INTEGER NOT NULL,
	actor     TEXT    NOT NULL,
	action    TEXT    NOT NULL,
	target    TEXT    NOT NULL,
	org_id    TEXT    NOT NULL,
	ip        TEXT    NOT NULL,
	outcome   TEXT    NOT NULL,
	detail    TEXT    NOT NULL,
	prev_hash BLOB    NOT NULL,
	hash      BLOB    NOT NULL
) STRICT;

-- The last appended event, kept apart so that deleting the newest events is
-- detected. Appenders lock this row (SQLite: the immediate transaction).
CREATE TABLE audit_head (
	id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB    NOT NULL
) STRICT;

INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, X'');
