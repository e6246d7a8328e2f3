-- Active Directory password sync: agents, links between users and AD
-- accounts, the conflict rule's per-user origin time, the AD changes
-- already applied (idempotency) and the accounts left unmatched. Times are
-- Unix microseconds (UTC) as in 0001.

-- An organisation's sync agents, by KeyID. sign_key and seal_key are the
-- raw Ed25519 and X25519 public keys. At most one agent per organisation is
-- not disabled.
CREATE TABLE sync_agents (
	id           TEXT    NOT NULL PRIMARY KEY,
	org_id       TEXT    NOT NULL REFERENCES organisations (id),
	sign_key     BLOB    NOT NULL,
	seal_key     BLOB    NOT NULL,
	created_at   INTEGER NOT NULL,
	last_contact INTEGER,
	disabled     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE UNIQUE INDEX sync_agents_active ON sync_agents (org_id) WHERE disabled = 0;

-- A user's AD account (objectGUID) in one organisation: one each way.
CREATE TABLE ad_links (
	org_id     TEXT    NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	guid       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (org_id, user_id),
	UNIQUE (org_id, guid)
) STRICT;

-- The origin time of the last password change applied to each user, from
-- Lanyard or from AD: an AD change not newer than it is dropped.
CREATE TABLE password_origins (
	user_id TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	at      INTEGER NOT NULL
) STRICT;

-- AD changes already handled, by the agent's ID, pruned after a while.
CREATE TABLE ad_changes (
	org_id  TEXT    NOT NULL,
	id      TEXT    NOT NULL,
	user_id TEXT    NOT NULL,
	outcome TEXT    NOT NULL,
	at      INTEGER NOT NULL,
	PRIMARY KEY (org_id, id)
) STRICT;

CREATE INDEX ad_changes_at ON ad_changes (at);

-- Accounts the sync could not pair: side 'ad' (ref is the objectGUID) or
-- 'lanyard' (ref is the user ID).
CREATE TABLE ad_unmatched (
	org_id  TEXT    NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	side    TEXT    NOT NULL,
	ref     TEXT    NOT NULL,
	label   TEXT    NOT NULL,
	seen_at INTEGER NOT NULL,
	PRIMARY KEY (org_id, side, ref)
) STRICT;
