-- Who did what, when: staff actions, what a DBA does in psql, schedules, and security events
-- (log-ins, refusals). The app names the actor of each transaction with
-- `SELECT set_config('bookstore.actor', 'staff boss', true)` (and `bookstore.address`); the
-- SQL operations below record under that name, or under the database user in psql.
CREATE TABLE audit_events (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor   TEXT NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 300),
    action  TEXT NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    subject TEXT NOT NULL DEFAULT '' CHECK (char_length(subject) <= 300),
    details JSONB NOT NULL DEFAULT '{}'::jsonb,
    address TEXT CHECK (char_length(address) <= 100)
);
-- The log page reads newest first (the primary key, backwards), optionally one action.
CREATE INDEX audit_events_action_idx ON audit_events (action, id DESC);
CREATE INDEX audit_events_at_brin ON audit_events USING brin (at);

CREATE FUNCTION audit_actor() RETURNS TEXT
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(nullif(current_setting('bookstore.actor', true), ''),
                          'psql ' || session_user) $$;

CREATE FUNCTION audit_record(action TEXT, subject TEXT, details JSONB) RETURNS VOID
    LANGUAGE sql
    AS $$
        INSERT INTO audit_events (actor, action, subject, details, address)
        VALUES (audit_actor(), action, coalesce(subject, ''), coalesce(details, '{}'::jsonb),
                nullif(current_setting('bookstore.address', true), ''))
    $$;

-- Who queued each task (the audit actor), so tasks can be searched by it. No index: the search
-- is by text it contains, and every index on tasks costs each task's insert and updates.
ALTER TABLE tasks ADD COLUMN queued_by TEXT;

-- A paused program's queued tasks wait (its schedule still queues them); resuming lets them
-- run. Unlike disabling, nothing is refused.
ALTER TABLE programs ADD COLUMN paused BOOLEAN NOT NULL DEFAULT false;

-- get_programs(): as before, and whether each program is paused (a new last column).
DROP FUNCTION get_programs();
CREATE FUNCTION get_programs()
    RETURNS TABLE (id BIGINT, name TEXT, function_name TEXT, description TEXT,
                   parameters JSONB, enabled BOOLEAN, schedule TEXT, next_run_at TIMESTAMPTZ,
                   last_task_id BIGINT, last_status TEXT, last_run_at TIMESTAMPTZ,
                   paused BOOLEAN)
    LANGUAGE sql STABLE AS $$
    SELECT p.id, p.name, p.function_name, p.description, f.parameters, p.enabled, p.schedule,
           p.next_run_at, last.id, last.status, last.created_at, p.paused
      FROM programs p
      LEFT JOIN program_functions f ON f.name = p.function_name
      LEFT JOIN LATERAL (
          SELECT t.id, t.status, t.created_at FROM tasks t
           WHERE t.program_id = p.id ORDER BY t.id DESC LIMIT 1
      ) last ON true
     ORDER BY p.name
$$;

CREATE OR REPLACE FUNCTION run_program(name TEXT, params JSONB) RETURNS BIGINT
    LANGUAGE plpgsql AS $$
DECLARE
    prog    programs%ROWTYPE;
    fn      program_functions%ROWTYPE;
    checked JSONB;
    new_id  BIGINT;
BEGIN
    SELECT * INTO prog FROM programs p WHERE p.name = run_program.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no program named %', coalesce(run_program.name, 'NULL')
            USING ERRCODE = 'P0002', HINT = 'SELECT * FROM get_programs() lists the programs.',
                  DETAIL = '{"code": "program_not_found", "fields": {"program": "no such program"}}';
    END IF;
    IF NOT prog.enabled THEN
        RAISE EXCEPTION 'program % is disabled', prog.name
            USING ERRCODE = '55000',
                  DETAIL = '{"code": "program_disabled", "fields": {"program": "is disabled"}}';
    END IF;
    SELECT * INTO fn FROM program_functions f WHERE f.name = prog.function_name;
    IF fn.kind = 'sql' THEN
        checked := coalesce(nullif(params, 'null'::jsonb), '{}'::jsonb);
        IF jsonb_typeof(checked) <> 'object' THEN
            RAISE EXCEPTION 'invalid parameters: they must be a JSON object like {"name": value}'
                USING ERRCODE = '22023',
                      DETAIL = '{"code": "invalid_parameters", "fields": {"parameters": "must be a JSON object"}}';
        END IF;
    ELSE
        checked := task_parameters_check(fn.parameters, params);
    END IF;
    INSERT INTO tasks (program_id, parameters, max_attempts, timeout_seconds, queued_by)
    VALUES (prog.id, checked, fn.max_attempts, fn.timeout_seconds, audit_actor())
    RETURNING tasks.id INTO new_id;
    PERFORM audit_record('task.queued', 'task ' || new_id, jsonb_build_object('program', prog.name));
    RETURN new_id;
END $$;

CREATE OR REPLACE FUNCTION cancel_task(task_id BIGINT) RETURNS TEXT
    LANGUAGE plpgsql AS $$
DECLARE
    current TEXT;
BEGIN
    SELECT t.status INTO current FROM tasks t WHERE t.id = cancel_task.task_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no task with id %', coalesce(task_id::text, 'NULL')
            USING ERRCODE = 'P0002', DETAIL = '{"code": "task_not_found", "fields": {}}';
    END IF;
    IF current = 'scheduled' THEN
        UPDATE tasks SET status = 'cancelled', end_time = now(), result = 'Cancelled before it started.'
         WHERE id = cancel_task.task_id;
        PERFORM audit_record('task.cancelled', 'task ' || cancel_task.task_id, '{}');
        RETURN 'cancelled';
    ELSIF current = 'running' THEN
        UPDATE tasks SET cancel_requested = true WHERE id = cancel_task.task_id;
        PERFORM audit_record('task.cancelled', 'task ' || cancel_task.task_id, '{"running": true}');
        RETURN 'running';
    END IF;
    RETURN current;
END $$;

-- Which statuses each staff action on tasks applies to; the functions below and the bulk
-- confirmations ask here.
CREATE FUNCTION task_action_applies(action TEXT, status TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE action
                   WHEN 'cancel' THEN status IN ('scheduled', 'running')
                   WHEN 'retry' THEN status IN ('error', 'cancelled')
                   WHEN 'delete' THEN status IN ('finished', 'error', 'cancelled')
                   ELSE false
               END
    $$;

-- retry_task(id): a new attempt for a task that ended in error or was cancelled (one more
-- than it has had). Returns the status after the call; other tasks are left as they are.
CREATE FUNCTION retry_task(task_id BIGINT) RETURNS TEXT
    LANGUAGE plpgsql AS $$
DECLARE
    current TEXT;
BEGIN
    SELECT t.status INTO current FROM tasks t WHERE t.id = retry_task.task_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no task with id %', coalesce(task_id::text, 'NULL')
            USING ERRCODE = 'P0002', DETAIL = '{"code": "task_not_found", "fields": {}}';
    END IF;
    IF task_action_applies('retry', current) THEN
        UPDATE tasks t
           SET status = 'scheduled', run_after = now(), end_time = NULL, result = NULL,
               result_table = NULL, cancel_requested = false, worker_id = NULL,
               max_attempts = t.attempt + 1
         WHERE t.id = retry_task.task_id;
        PERFORM audit_record('task.retried', 'task ' || retry_task.task_id,
                             jsonb_build_object('was', current));
        RETURN 'scheduled';
    END IF;
    RETURN current;
END $$;

-- delete_task(id): removes a task that has ended (finished, error, cancelled). Returns
-- whether it did; a queued or running task is never deleted (cancel it first).
CREATE FUNCTION delete_task(task_id BIGINT) RETURNS BOOLEAN
    LANGUAGE plpgsql AS $$
DECLARE
    program TEXT;
BEGIN
    DELETE FROM tasks t USING programs p
     WHERE t.id = delete_task.task_id AND p.id = t.program_id
       AND task_action_applies('delete', t.status)
    RETURNING p.name INTO program;
    IF program IS NULL THEN
        RETURN false;
    END IF;
    PERFORM audit_record('task.deleted', 'task ' || delete_task.task_id,
                         jsonb_build_object('program', program));
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION register_program(name TEXT, function_name TEXT) RETURNS BIGINT
    LANGUAGE plpgsql AS $$
DECLARE
    new_id BIGINT;
BEGIN
    IF register_program.name IS NULL OR register_program.name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid program name %: use 1 to 63 lower-case letters, digits and _, starting with a letter',
            coalesce(register_program.name, 'NULL')
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_name", "fields": {"name": "use 1 to 63 lower-case letters, digits and _, starting with a letter"}}';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM program_functions f WHERE f.name = register_program.function_name)
       AND register_program.function_name ~ '^[a-z][a-z0-9_]{0,62}$'
       AND task_sql_function(register_program.function_name) IS NOT NULL THEN
        INSERT INTO program_functions (name, kind, description, parameters, timeout_seconds, max_attempts)
        VALUES (register_program.function_name, 'sql',
                format('SQL function %s(params jsonb)', register_program.function_name), '[]', 300, 1)
        ON CONFLICT DO NOTHING;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM program_functions f WHERE f.name = register_program.function_name) THEN
        RAISE EXCEPTION 'unknown function %: the app has %, or create a SQL function %(params jsonb) RETURNS text (or a table)',
            coalesce(register_program.function_name, 'NULL'),
            (SELECT string_agg(f.name, ', ' ORDER BY f.name) FROM program_functions f WHERE f.kind = 'rust'),
            coalesce(register_program.function_name, 'name')
            USING ERRCODE = 'P0002',
                  DETAIL = '{"code": "unknown_function", "fields": {"function_name": "is not a function of this app nor a SQL function name(params jsonb)"}}';
    END IF;
    INSERT INTO programs (name, function_name, description)
    SELECT register_program.name, f.name, f.description
      FROM program_functions f WHERE f.name = register_program.function_name
    ON CONFLICT ON CONSTRAINT programs_name_key DO NOTHING
    RETURNING programs.id INTO new_id;
    IF new_id IS NULL THEN
        RAISE EXCEPTION 'a program named % already exists', register_program.name
            USING ERRCODE = '23505',
                  DETAIL = '{"code": "name_taken", "fields": {"name": "is already taken"}}';
    END IF;
    PERFORM audit_record('program.registered', 'program ' || register_program.name,
                         jsonb_build_object('function', register_program.function_name));
    RETURN new_id;
END $$;

-- task_claim skips the tasks of paused programs (the list is read once per claim).
CREATE OR REPLACE FUNCTION task_claim(worker_name TEXT, max_tasks INTEGER,
                                      after_run_after TIMESTAMPTZ, after_id BIGINT)
    RETURNS TABLE (id BIGINT, attempt INTEGER, function_name TEXT, function_kind TEXT,
                   parameters JSONB, timeout_seconds INTEGER, run_after TIMESTAMPTZ)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH picked AS (
        SELECT q.id FROM tasks q
         WHERE q.status = 'scheduled' AND q.run_after <= now()
           AND (q.run_after, q.id) > (coalesce(after_run_after, '-infinity'), coalesce(after_id, 0))
           AND q.program_id <> ALL (coalesce((SELECT array_agg(p.id) FROM programs p WHERE p.paused),
                                             '{}'::bigint[]))
         ORDER BY q.run_after, q.id
         LIMIT max_tasks
           FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE tasks t
           SET status = 'running', worker_id = worker_name, start_time = now(),
               heartbeat_at = now(), attempt = t.attempt + 1,
               progress_done = NULL, progress_total = NULL, progress_message = NULL
          FROM picked
         WHERE t.id = picked.id
     RETURNING t.id, t.attempt, t.program_id, t.parameters, t.timeout_seconds, t.run_after
    )
    SELECT c.id, c.attempt, f.name, f.kind, c.parameters, c.timeout_seconds, c.run_after
      FROM claimed c
      JOIN programs p ON p.id = c.program_id
      JOIN program_functions f ON f.name = p.function_name
     ORDER BY c.run_after, c.id;
END $$;

-- task_fail: each failed attempt also keeps when it started, so the task page can show every
-- attempt's start, end and duration.
CREATE OR REPLACE FUNCTION task_fail(worker_name TEXT, task_id BIGINT, task_attempt INTEGER,
                          error TEXT, retryable BOOLEAN, retry_base_ms BIGINT) RETURNS TEXT
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    new_status TEXT;
BEGIN
    UPDATE tasks SET
        attempts = attempts || jsonb_build_array(jsonb_build_object(
            'attempt', attempt, 'error', task_fail.error, 'started', start_time, 'at', now())),
        status = CASE WHEN cancel_requested THEN 'cancelled'
                      WHEN attempt >= max_attempts OR NOT retryable THEN 'error'
                      ELSE 'scheduled' END,
        run_after = CASE WHEN attempt >= max_attempts OR NOT retryable OR cancel_requested THEN run_after
                         ELSE now() + least(retry_base_ms * power(2, least(attempt - 1, 30)), 300000)
                                      * interval '1 millisecond' END,
        end_time = CASE WHEN attempt >= max_attempts OR NOT retryable OR cancel_requested THEN now() END,
        result = CASE
            WHEN cancel_requested THEN 'Cancelled; the attempt ended with: ' || task_fail.error
            WHEN attempt >= max_attempts OR NOT retryable THEN
                format('Failed after %s attempt%s:', attempt, CASE WHEN attempt = 1 THEN '' ELSE 's' END)
                || E'\n' ||
                (SELECT string_agg(format('attempt %s: %s', e->>'attempt', e->>'error'), E'\n'
                                   ORDER BY (e->>'attempt')::int)
                   FROM jsonb_array_elements(attempts || jsonb_build_array(jsonb_build_object(
                        'attempt', attempt, 'error', task_fail.error))) e)
            ELSE result END
     WHERE id = task_id AND attempt = task_attempt AND worker_id = worker_name AND status = 'running'
    RETURNING status INTO new_status;
    RETURN new_status;
END $$;
