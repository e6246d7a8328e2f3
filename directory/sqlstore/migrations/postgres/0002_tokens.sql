-- Refresh tokens (only their hashes) and token-signing keys. Times are Unix
-- microseconds (UTC) as in 0001; a NULL auth_time, rotated_at or revoked_at
-- is the zero time. Lists are JSON text.

CREATE TABLE refresh_tokens (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
	family_id  TEXT COLLATE "C" NOT NULL,
	client_id  TEXT COLLATE "C" NOT NULL,
	user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	session_id TEXT COLLATE "C" NOT NULL,
	scopes     TEXT   NOT NULL,
	audience   TEXT   NOT NULL,
	amr        TEXT   NOT NULL,
	acr        TEXT   NOT NULL,
	auth_time  BIGINT,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	rotated_at BIGINT,
	revoked_at BIGINT
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE signing_keys (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	generation BIGINT NOT NULL UNIQUE,
	algorithm  TEXT   NOT NULL,
	private    BYTEA  NOT NULL,
	public     BYTEA  NOT NULL,
	created_at BIGINT NOT NULL,
	sign_from  BIGINT NOT NULL
);
