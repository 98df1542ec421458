-- Session tokens are 256 random bits; the table keeps only their SHA-256, so whoever reads it
-- (a backup, a replica, a SQL injection) gets no cookie that works. Existing sessions end:
-- their tokens were stored as they are.
DELETE FROM sessions;
ALTER TABLE sessions DROP CONSTRAINT sessions_pkey;
ALTER TABLE sessions DROP COLUMN token;
ALTER TABLE sessions
    ADD COLUMN token_hash BYTEA NOT NULL PRIMARY KEY CHECK (octet_length(token_hash) = 32);
