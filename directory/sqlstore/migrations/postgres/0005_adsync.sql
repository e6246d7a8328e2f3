-- Active Directory password sync: agents, links between users and AD
-- accounts, the conflict rule's per-user origin time, the AD changes
-- already applied (idempotency) and the accounts left unmatched. Times are
-- Unix microseconds (UTC) as in 0001.

-- An organisation's sync agents, by KeyID. sign_key and seal_key are the
-- raw Ed25519 and X25519 public keys. At most one agent per organisation is
-- not disabled.
CREATE TABLE sync_agents (
	id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	org_id       TEXT COLLATE "C" NOT NULL REFERENCES organisations (id),
	sign_key     BYTEA   NOT NULL,
	seal_key     BYTEA   NOT NULL,
	created_at   BIGINT  NOT NULL,
	last_contact BIGINT,
	disabled     INTEGER NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX sync_agents_active ON sync_agents (org_id) WHERE disabled = 0;

-- A user's AD account (objectGUID) in one organisation: one each way.
CREATE TABLE ad_links (
	org_id     TEXT COLLATE "C" NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	guid       TEXT COLLATE "C" NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (org_id, user_id),
	UNIQUE (org_id, guid)
);

-- The origin time of the last password change applied to each user, from
-- Lanyard or from AD: an AD change not newer than it is dropped.
CREATE TABLE password_origins (
	user_id TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	at      BIGINT NOT NULL
);

-- AD changes already handled, by the agent's ID, pruned after a while.
CREATE TABLE ad_changes (
	org_id  TEXT COLLATE "C" NOT NULL,
	id      TEXT COLLATE "C" NOT NULL,
	user_id TEXT COLLATE "C" NOT NULL,
	outcome TEXT   NOT NULL,
	at      BIGINT NOT NULL,
	PRIMARY KEY (org_id, id)
);

CREATE INDEX ad_changes_at ON ad_changes (at);

-- Accounts the sync could not pair: side 'ad' (ref is the objectGUID) or
-- 'lanyard' (ref is the user ID).
CREATE TABLE ad_unmatched (
	org_id  TEXT COLLATE "C" NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	side    TEXT COLLATE "C" NOT NULL,
	ref     TEXT COLLATE "C" NOT NULL,
	label   TEXT   NOT NULL,
	seen_at BIGINT NOT NULL,
	PRIMARY KEY (org_id, side, ref)
);
