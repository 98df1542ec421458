ALTER TABLE login_throttle DROP COLUMN last_failure_at;
