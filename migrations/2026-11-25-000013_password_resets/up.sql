-- One-time password reset links (issued by `bookstore reset-password` or a staff page; there
-- is no e-mail). Like session tokens, a link's token is 256 random bits of which only the
-- SHA-256 is kept, so reading this table yields no link that works. A link is used once
-- (`used_at`) and lives 30 minutes; issuing a new one for a user deletes the earlier ones.
CREATE TABLE password_resets (
    token_hash BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    CHECK (expires_at > created_at)
);
CREATE INDEX password_resets_user_id_idx ON password_resets (user_id);
