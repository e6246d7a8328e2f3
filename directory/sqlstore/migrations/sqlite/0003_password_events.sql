-- Organisation policies, the password-change outbox and the index behind a
-- user's audit trail. Times are Unix microseconds (UTC) as in 0001.

-- An organisation's directory.OrgPolicy as JSON; NULL when it has set none.
ALTER TABLE organisations ADD COLUMN policy TEXT;

-- The outbox the Active Directory sync reads by seq. AUTOINCREMENT keeps seq
-- from being reused when the newest event is deleted (acknowledged), which a
-- reader resuming after that seq would otherwise miss. Appends are
-- serialised by the write lock, so seq order is commit order. org_id may be
-- empty and is not a reference. sealed is NULL when there is nothing sealed.
CREATE TABLE password_events (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	id      TEXT    NOT NULL UNIQUE,
	user_id TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	org_id  TEXT    NOT NULL,
	source  TEXT    NOT NULL,
	at      INTEGER NOT NULL,
	sealed  BLOB
) STRICT;

CREATE INDEX password_events_org ON password_events (org_id, seq);
CREATE INDEX password_events_user ON password_events (user_id);

-- AuditEventsFor: one target's events from a time on, newest first.
CREATE INDEX audit_events_target ON audit_events (target, at, seq);
