-- Background programs and their runs (tasks).
CREATE TABLE programs (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    -- A Rust function compiled into the app; the app's registry knows which ones exist.
    function_name TEXT NOT NULL CHECK (function_name ~ '^[a-z][a-z0-9_]{0,62}$'),
    description   TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id   BIGINT NOT NULL REFERENCES programs (id) ON DELETE RESTRICT,
    parameters   JSONB,
    status       TEXT NOT NULL DEFAULT 'scheduled'
                 CHECK (status IN ('scheduled', 'running', 'finished', 'error', 'cancelled')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A scheduled task is not claimed before this (retries back off by moving it forward).
    run_after    TIMESTAMPTZ NOT NULL DEFAULT now(),
    start_time   TIMESTAMPTZ,
    end_time     TIMESTAMPTZ,
    result       TEXT,
    attempt      INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    worker_id    TEXT,
    heartbeat_at TIMESTAMPTZ,
    -- A running task always names its worker; a finished one has its end time.
    CHECK (status <> 'running' OR (worker_id IS NOT NULL AND start_time IS NOT NULL)),
    CHECK (status NOT IN ('finished', 'error', 'cancelled') OR end_time IS NOT NULL)
);
-- Claiming scans only the queue, in order.
CREATE INDEX tasks_queue_idx ON tasks (run_after, id) WHERE status = 'scheduled';
-- Lease checks scan only running tasks.
CREATE INDEX tasks_running_heartbeat_idx ON tasks (heartbeat_at) WHERE status = 'running';
-- Dashboard lists: newest first, optionally by status or program.
CREATE INDEX tasks_created_at_idx ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_status_created_at_idx ON tasks (status, created_at DESC);
CREATE INDEX tasks_program_id_created_at_idx ON tasks (program_id, created_at DESC);
