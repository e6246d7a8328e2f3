-- Refresh tokens (only their hashes) and token-signing keys. Times are Unix
-- microseconds (UTC) as in 0001; a NULL auth_time, rotated_at or revoked_at
-- is the zero time. Lists are JSON text.

CREATE TABLE refresh_tokens (
	id         TEXT    NOT NULL PRIMARY KEY,
	token_hash TEXT    NOT NULL UNIQUE,
	family_id  TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	session_id TEXT    NOT NULL,
	scopes     TEXT    NOT NULL,
	audience   TEXT    NOT NULL,
	amr        TEXT    NOT NULL,
	acr        TEXT    NOT NULL,
	auth_time  INTEGER,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	rotated_at INTEGER,
	revoked_at INTEGER
) STRICT;

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE signing_keys (
	id         TEXT    NOT NULL PRIMARY KEY,
	generation INTEGER NOT NULL UNIQUE,
	algorithm  TEXT    NOT NULL,
	private    BLOB    NOT NULL,
	public     BLOB    NOT NULL,
	created_at INTEGER NOT NULL,
	sign_from  INTEGER NOT NULL
) STRICT;
