-- Accounts and server-side sessions.
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The format rule is enforced here too, as the last guard behind the form validation.
    login         TEXT NOT NULL CHECK (login ~ '^[A-Za-z0-9._-]{3,32}$'),
    display_name  TEXT NOT NULL CHECK (char_length(btrim(display_name)) BETWEEN 1 AND 100),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role          TEXT NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'staff')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Logins are unique case-insensitively: "Alice" and "alice" are the same account.
CREATE UNIQUE INDEX users_login_lower_key ON users (lower(login));

CREATE TABLE sessions (
    -- The only thing the browser holds; random (uuid v4), never derived from user data.
    token        UUID PRIMARY KEY,
    -- NULL while the visitor is anonymous (a session can carry a CSRF token or a flash message
    -- before login); logging in replaces the session with a new token.
    user_id      BIGINT REFERENCES users (id) ON DELETE CASCADE,
    state        JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
