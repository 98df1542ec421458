-- API tokens: a display prefix to tell them apart, an optional expiry, unique live names.

-- The token's first characters ("bks_" and 8 hex digits), kept in clear so the owner can tell
-- tokens apart; 32 of the token's 244 random bits, so the rest is still far beyond guessing.
-- NULL for tokens made before this migration: only their hash is known.
ALTER TABLE api_tokens
    ADD COLUMN display_prefix TEXT CHECK (display_prefix ~ '^bks_[0-9a-f]{8}$'),
    ADD COLUMN expires_at     TIMESTAMPTZ;

-- Live tokens with the same name (case-insensitively) would block the index below: the later
-- ones get their id appended. Renamed rather than revoked, so no script stops working.
UPDATE api_tokens AS later
   SET name = left(later.name, 78) || ' #' || later.id
 WHERE later.revoked_at IS NULL
   AND EXISTS (SELECT 1
                 FROM api_tokens AS earlier
                WHERE earlier.user_id = later.user_id
                  AND lower(earlier.name) = lower(later.name)
                  AND earlier.revoked_at IS NULL
                  AND earlier.id < later.id);

-- A name is unique per person among tokens not revoked: this index, not a check before the
-- insert, decides between two concurrent creations. Expiry cannot be part of the predicate
-- (now() is not immutable); creating a token retires expired ones of the same name first.
CREATE UNIQUE INDEX api_tokens_live_name_key
    ON api_tokens (user_id, lower(name))
 WHERE revoked_at IS NULL;
