-- E-mail (issue 19): each account's confirmed address, addresses waiting for confirmation,
-- and the outbox of mails the send_mail program sends.

-- The confirmed address only: an address counts once its owner opened the link sent to it.
-- Stored trimmed with its domain in lower case; unique whatever the case of its local part.
ALTER TABLE users ADD COLUMN email TEXT CHECK (email IS NULL OR length(email) BETWEEN 3 AND 254);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- An address someone asked for (at registration or on /account), until its link is used.
-- The link's token is made by the program that sends the mail (so it never sits in a task's
-- parameters); the table keeps only its SHA-256, NULL until that mail goes out.
CREATE TABLE email_confirmations (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    token_hash BYTEA UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX email_confirmations_user_id_idx ON email_confirmations (user_id);

-- The outbox: one row per mail, written in the transaction that decided to send it (an
-- order's confirmation commits with the order), sent by a send_mail task that names it. A
-- mail is composed when it is sent, from `data` (never a secret: a link's token is made then).
CREATE TABLE mails (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT NOT NULL
                CHECK (kind IN ('order_confirmation', 'password_reset', 'email_confirmation', 'low_stock')),
    recipient   TEXT NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
    user_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    subject     TEXT NOT NULL CHECK (length(subject) <= 300),
    data        JSONB NOT NULL DEFAULT '{}',
    -- The Message-ID every attempt sends: a receiver that sees it twice sees one message.
    message_id  TEXT NOT NULL UNIQUE,
    -- The send_mail task (no foreign key: ended tasks are pruned, the mail's record stays).
    task_id     BIGINT,
    status      TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at     TIMESTAMPTZ
);
CREATE INDEX mails_user_kind_idx ON mails (user_id, kind, created_at);
CREATE INDEX mails_created_at_idx ON mails (created_at);
