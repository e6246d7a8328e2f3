-- Organisation policies, the password-change outbox and the index behind a
-- user's audit trail. Times are Unix microseconds (UTC) as in 0001.

-- An organisation's directory.OrgPolicy as JSON; NULL when it has set none.
ALTER TABLE organisations ADD COLUMN policy TEXT;

-- The outbox the Active Directory sync reads by seq. A sequence never hands
-- out a value twice, so deleting (acknowledging) the newest event cannot
-- make a later one reuse its seq. Sequence values are taken before commit,
-- so concurrent transactions could commit out of seq order and a reader
-- resuming after a seq could skip one: appenders first take a
-- transaction-scoped advisory lock (see sqlstore's dialect.outboxLock), which
-- makes seq order commit order. org_id may be empty and is not a reference.
-- sealed is NULL when there is nothing sealed.
CREATE TABLE password_events (
	seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id      TEXT COLLATE "C" NOT NULL UNIQUE,
	user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	org_id  TEXT COLLATE "C" NOT NULL,
	source  TEXT   NOT NULL,
	at      BIGINT NOT NULL,
	sealed  BYTEA
);

CREATE INDEX password_events_org ON password_events (org_id, seq);
CREATE INDEX password_events_user ON password_events (user_id);

-- AuditEventsFor: one target's events from a time on, newest first.
CREATE INDEX audit_events_target ON audit_events (target, at, seq);
