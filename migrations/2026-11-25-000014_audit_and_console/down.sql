-- Back to the definitions of migrations 000007 and 000009.
CREATE OR REPLACE FUNCTION task_fail(worker_name TEXT, task_id BIGINT, task_attempt INTEGER,
                          error TEXT, retryable BOOLEAN, retry_base_ms BIGINT) RETURNS TEXT
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    new_status TEXT;
BEGIN
    UPDATE tasks SET
        attempts = attempts || jsonb_build_array(jsonb_build_object(
            'attempt', attempt, 'error', task_fail.error, 'at', now())),
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

DROP FUNCTION delete_task(BIGINT);
DROP FUNCTION retry_task(BIGINT);
DROP FUNCTION task_action_applies(TEXT, TEXT);


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
    INSERT INTO tasks (program_id, parameters, max_attempts, timeout_seconds)
    VALUES (prog.id, checked, fn.max_attempts, fn.timeout_seconds)
    RETURNING tasks.id INTO new_id;
    RETURN new_id;
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
    RETURN new_id;
END $$;

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
        RETURN 'cancelled';
    ELSIF current = 'running' THEN
        UPDATE tasks SET cancel_requested = true WHERE id = cancel_task.task_id;
        RETURN 'running';
    END IF;
    RETURN current;
END $$;

DROP FUNCTION get_programs();
CREATE FUNCTION get_programs()
    RETURNS TABLE (id BIGINT, name TEXT, function_name TEXT, description TEXT,
                   parameters JSONB, enabled BOOLEAN, schedule TEXT, next_run_at TIMESTAMPTZ,
                   last_task_id BIGINT, last_status TEXT, last_run_at TIMESTAMPTZ)
    LANGUAGE sql STABLE AS $$
    SELECT p.id, p.name, p.function_name, p.description, f.parameters, p.enabled, p.schedule,
           p.next_run_at, last.id, last.status, last.created_at
      FROM programs p
      LEFT JOIN program_functions f ON f.name = p.function_name
      LEFT JOIN LATERAL (
          SELECT t.id, t.status, t.created_at FROM tasks t
           WHERE t.program_id = p.id ORDER BY t.id DESC LIMIT 1
      ) last ON true
     ORDER BY p.name
$$;
ALTER TABLE programs DROP COLUMN paused;
ALTER TABLE tasks DROP COLUMN queued_by;
DROP FUNCTION audit_record(TEXT, TEXT, JSONB);
DROP FUNCTION audit_actor();
DROP TABLE audit_events;
