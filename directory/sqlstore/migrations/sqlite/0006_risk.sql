-- The risk engine: per-user and population profiles (the engine's compact
-- encoding, at most 4 KiB), the sign-ins it stepped up or blocked with their
-- reasons, the claims on administrators' digests, and organisations'
-- tightened thresholds. Times are Unix microseconds (UTC) as in 0001.

CREATE TABLE risk_profiles (
	user_id    TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	data       BLOB    NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE risk_populations (
	pop_key    TEXT    NOT NULL PRIMARY KEY,
	data       BLOB    NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE risk_events (
	id          TEXT    NOT NULL PRIMARY KEY,
	event_time  INTEGER NOT NULL,
	user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	org_id      TEXT    NOT NULL,
	decision    TEXT    NOT NULL,
	score       REAL    NOT NULL,
	reasons     TEXT    NOT NULL,
	ip          TEXT    NOT NULL,
	place       TEXT    NOT NULL,
	outcome     TEXT    NOT NULL,
	reported_at INTEGER
) STRICT;

CREATE INDEX risk_events_org ON risk_events (org_id, event_time);
CREATE INDEX risk_events_time ON risk_events (event_time);

CREATE TABLE risk_digests (
	org_id TEXT    NOT NULL,
	period INTEGER NOT NULL,
	PRIMARY KEY (org_id, period)
) STRICT;

CREATE TABLE risk_policies (
	org_id  TEXT NOT NULL PRIMARY KEY REFERENCES organisations (id) ON DELETE CASCADE,
	step_up REAL NOT NULL,
	block   REAL NOT NULL
) STRICT;
