-- Throttling by growing delays instead of a hard lock: each counter also remembers its last
-- failure, from which the next attempt's wait is measured. Keys (see domain::accounts::throttle):
-- 'pair:<login digest>:<address>', 'login:<login digest>', 'addr:<address>',
-- 'register:<address>'.
ALTER TABLE login_throttle ADD COLUMN last_failure_at TIMESTAMPTZ NOT NULL DEFAULT now();
