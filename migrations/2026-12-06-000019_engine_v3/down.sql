-- Reverts engine_v3: the functions as they were, then the tables and columns.
CREATE OR REPLACE FUNCTION tasks_notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bookstore_tasks', '');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION retry_task(task_id BIGINT) RETURNS TEXT
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

CREATE OR REPLACE FUNCTION task_action_applies(action TEXT, status TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE action
                   WHEN 'cancel' THEN status IN ('scheduled', 'running')
                   WHEN 'retry' THEN status IN ('error', 'cancelled')
                   WHEN 'delete' THEN status IN ('finished', 'error', 'cancelled')
                   ELSE false
               END
    $$;

DROP FUNCTION task_run_sql_function(TEXT, JSONB, BIGINT);
CREATE FUNCTION task_run_sql_function(function_name TEXT, params JSONB,
                                      OUT text_result TEXT, OUT columns TEXT[], OUT cells JSON)
    LANGUAGE plpgsql AS $$
DECLARE
    fn       regprocedure := task_sql_function(function_name);
    proc     pg_proc%ROWTYPE;
    all_rows JSON;
BEGIN
    IF fn IS NULL THEN
        RAISE EXCEPTION 'there is no SQL function %(params jsonb) returning text or rows', function_name
            USING ERRCODE = '42883';
    END IF;
    SELECT * INTO proc FROM pg_proc WHERE oid = fn;
    IF NOT proc.proretset AND proc.prorettype = 'text'::regtype THEN
        EXECUTE format('SELECT %s($1)', fn::oid::regproc) USING params INTO text_result;
        RETURN;
    END IF;
    EXECUTE format('SELECT coalesce(json_agg(to_json(r)), ''[]''::json) FROM %s($1) AS r',
                   fn::oid::regproc)
        USING params INTO all_rows;
    IF json_typeof(all_rows->0) = 'object' THEN
        SELECT array_agg(e.key ORDER BY e.ord) INTO columns
          FROM json_each(all_rows->0) WITH ORDINALITY AS e(key, value, ord);
    ELSIF json_array_length(all_rows) = 0 AND proc.proargmodes IS NOT NULL THEN
        SELECT array_agg(a.name ORDER BY a.ord) INTO columns
          FROM unnest(proc.proargnames, proc.proargmodes) WITH ORDINALITY AS a(name, mode, ord)
         WHERE a.mode IN ('o', 't');
    END IF;
    IF columns IS NULL THEN
        columns := ARRAY[function_name];
    END IF;
    SELECT coalesce(json_agg(
               CASE WHEN json_typeof(r) = 'object'
                    THEN (SELECT json_agg(x.value ORDER BY x.ord)
                            FROM json_each_text(r) WITH ORDINALITY AS x(key, value, ord))
                    ELSE json_build_array(r #>> '{}') END
               ORDER BY i), '[]'::json)
      INTO cells
      FROM json_array_elements(all_rows) WITH ORDINALITY AS a(r, i);
END $$;

DROP FUNCTION task_batch(BIGINT);
DROP FUNCTION task_upstream(BIGINT);
DROP FUNCTION task_current_id();
DROP FUNCTION task_snooze_sql(INTERVAL);
DROP FUNCTION task_snooze(TEXT, BIGINT, INTEGER, DOUBLE PRECISION);
DROP FUNCTION task_next_due();
DROP FUNCTION task_claim(TEXT, INTEGER, INTEGER, TIMESTAMPTZ, BIGINT, BOOLEAN);
CREATE FUNCTION task_claim(worker_name TEXT, max_tasks INTEGER,
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
               heartbeat_at = now(), attempt = t.attempt + 1, waiting = true,
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

DROP FUNCTION set_program_options(TEXT, INTEGER, INTEGER, INTEGER);
DROP FUNCTION task_dependencies_prune();
DROP TRIGGER tasks_status_changed ON tasks;
DROP FUNCTION tasks_status_changed();
DROP FUNCTION task_batch_check(BIGINT);
DROP FUNCTION run_batch(TEXT, JSONB[], TEXT, JSONB);
DROP FUNCTION run_programs(TEXT, JSONB[], INTEGER, BIGINT);
DROP FUNCTION task_sql_parameters(JSONB);
DROP FUNCTION run_program(TEXT, JSONB, INTEGER, TEXT, INTERVAL, BIGINT[]);
DROP FUNCTION task_enqueue(TEXT, JSONB, INTEGER, TEXT, INTERVAL, BIGINT[], BIGINT);
CREATE FUNCTION run_program(name TEXT, params JSONB) RETURNS BIGINT
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

DROP TABLE task_batches;
DROP TABLE task_rate_starts;
DROP TABLE task_dependencies;
DROP INDEX tasks_batch_idx;
DROP INDEX tasks_unique_key_idx;
DROP INDEX tasks_limited_running_idx;
DROP INDEX tasks_limited_queue_idx;
DROP INDEX tasks_queue_idx;
-- Tasks waiting for others cannot be kept as such: they are cancelled.
UPDATE tasks SET status = 'cancelled', end_time = now(),
       result = 'Cancelled: the engine was downgraded while it waited for other tasks.'
 WHERE status = 'pending';
ALTER TABLE tasks
    DROP COLUMN batch_id, DROP COLUMN has_dependents, DROP COLUMN upstream_left,
    DROP COLUMN unique_released, DROP COLUMN unique_for, DROP COLUMN unique_key,
    DROP COLUMN limited, DROP COLUMN priority;
CREATE INDEX tasks_queue_idx ON tasks (run_after, id) WHERE status = 'scheduled';
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('scheduled', 'running', 'finished', 'error', 'cancelled'));
ALTER TABLE tasks RESET (fillfactor);
ALTER TABLE program_functions DROP COLUMN default_max_running;
ALTER TABLE programs DROP COLUMN per_minute, DROP COLUMN max_running, DROP COLUMN priority;
