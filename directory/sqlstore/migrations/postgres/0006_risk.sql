-- The risk engine: per-user and population profiles (the engine's compact
-- encoding, at most 4 KiB), the sign-ins it stepped up or blocked with their
-- reasons, the claims on administrators' digests, and organisations'
-- tightened thresholds. Times are Unix microseconds (UTC) as in 0001.

CREATE TABLE risk_profiles (
	user_id    TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	data       BYTEA  NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE risk_populations (
	pop_key    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	data       BYTEA  NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE risk_events (
	id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	event_time  BIGINT           NOT NULL,
	user_id     TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	org_id      TEXT COLLATE "C" NOT NULL,
	decision    TEXT             NOT NULL,
	score       DOUBLE PRECISION NOT NULL,
	reasons     TEXT             NOT NULL,
	ip          TEXT             NOT NULL,
	place       TEXT             NOT NULL,
	outcome     TEXT             NOT NULL,
	reported_at BIGINT
);

CREATE INDEX risk_events_org ON risk_events (org_id, event_time);
CREATE INDEX risk_events_time ON risk_events (event_time);

CREATE TABLE risk_digests (
	org_id TEXT COLLATE "C" NOT NULL,
	period BIGINT           NOT NULL,
	PRIMARY KEY (org_id, period)
);

CREATE TABLE risk_policies (
	org_id  TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES organisations (id) ON DELETE CASCADE,
	step_up DOUBLE PRECISION NOT NULL,
	block   DOUBLE PRECISION NOT NULL
);
