-- An administrator's unlock of an account (by its key, a hash of the
-- email), kept in the directory so that a command on another process
-- reaches servers whose lockout counters live in their own memory.
CREATE TABLE account_unlocks (
	account     TEXT   NOT NULL PRIMARY KEY,
	unlocked_at BIGINT NOT NULL
);
