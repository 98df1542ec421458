-- Why a session ended before its time (its user logged in elsewhere, or the password changed),
-- kept under its token's hash so that the browser still holding the token is told once, on its
-- next page (the row is deleted then). Rows older than a session's lifetime are purged.
CREATE TABLE ended_sessions (
    token_hash BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    reason TEXT NOT NULL CHECK (reason IN ('logged_in_elsewhere', 'password_changed')),
    ended_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ended_sessions_ended_at_idx ON ended_sessions (ended_at);
