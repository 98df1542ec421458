-- Failed-login counters, shared by every app node (an in-memory limiter would let an attacker
-- spread guesses over the nodes).
CREATE TABLE login_throttle (
    -- 'login:<lower-cased login>' or 'addr:<ip address>'
    key               TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL CHECK (failures >= 1),
    window_started_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Secrets every node must share, created once by whichever node starts first
-- (the key that signs session cookies).
CREATE TABLE app_secrets (
    name       TEXT PRIMARY KEY,
    value      BYTEA NOT NULL CHECK (octet_length(value) >= 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
