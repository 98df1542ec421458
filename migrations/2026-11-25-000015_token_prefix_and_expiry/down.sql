-- Names renamed by up.sql keep their " #id" suffix: harmless, and the originals are gone.
DROP INDEX api_tokens_live_name_key;
ALTER TABLE api_tokens
    DROP COLUMN expires_at,
    DROP COLUMN display_prefix;
