DROP TABLE mails;
DROP TABLE email_confirmations;
DROP INDEX users_email_lower_key;
ALTER TABLE users DROP COLUMN email;
