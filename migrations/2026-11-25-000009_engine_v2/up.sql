-- Task engine v2. Every change the engine makes to a task is one of the functions below, so
-- each rule (claim, finish, retry or give up, backoff, rescue, cancel, re-queue) is written
-- once, here; the Rust engine decides only *when* to call them. Every write about a running
-- task names the (task, attempt, worker) that holds it: a run that lost its lease, or an
-- attempt that was rescued and claimed again, can write nothing.
--
-- Also: programs whose function is a SQL function `name(params jsonb)` in this database.

-- Heartbeats change only heartbeat_at, which no index covers any more, so they are HOT
-- updates; the rescue and "what runs where" look up running tasks by worker.
DROP INDEX tasks_running_heartbeat_idx;
CREATE INDEX tasks_running_worker_idx ON tasks (worker_id) WHERE status = 'running';

-- A claim and a finish each UPDATE a task's status, so each writes an entry into every
-- index its new row version belongs to: every index on tasks costs two writes per task. Keep
-- few: lists order by id (the order tasks were created in), the rare statuses the pages
-- filter on have a partial index, and the hourly chart a BRIN index (tiny, nearly free).
DROP INDEX tasks_created_at_idx;
DROP INDEX tasks_status_created_at_idx;
DROP INDEX tasks_program_id_created_at_idx;
CREATE INDEX tasks_program_id_idx ON tasks (program_id, id DESC);
CREATE INDEX tasks_ended_badly_idx ON tasks (id DESC) WHERE status IN ('error', 'cancelled');
CREATE INDEX tasks_created_at_brin ON tasks USING brin (created_at);

-- get_programs(): as before, with "last task" found by id (see the indexes above).
CREATE OR REPLACE FUNCTION get_programs()
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

-- 'rust': compiled into the app (the app writes these rows at start).
-- 'sql': a function name(params jsonb) in this database, registered by register_program.
ALTER TABLE program_functions
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'rust' CHECK (kind IN ('rust', 'sql'));

-- The SQL function a 'sql' program runs: name(jsonb) in a schema of ours (not pg_catalog),
-- returning text, a row type, or a set. NULL when there is none.
CREATE FUNCTION task_sql_function(function_name TEXT) RETURNS regprocedure
    LANGUAGE sql STABLE AS $$
    SELECT p.oid::regprocedure
      FROM pg_proc p
     WHERE p.oid = to_regprocedure(format('%I(jsonb)', function_name))
       AND p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       AND p.prokind = 'f'
       AND (p.proretset OR p.prorettype IN ('text'::regtype, 'record'::regtype)
            OR EXISTS (SELECT 1 FROM pg_type t WHERE t.oid = p.prorettype AND t.typtype = 'c'))
$$;

-- register_program(name, function_name): a new program for a function the app has, or for a
-- SQL function function_name(params jsonb) in this database.
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

-- run_program(name, params): validates and queues a task; returns its id. A SQL function
-- takes any JSON object (it checks its own parameters).
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

-- task_claim: marks up to max_tasks due tasks running for a worker, oldest first. The scan
-- starts after (after_run_after, after_id), where this worker's previous claim stopped, so it
-- does not wade through the index entries of tasks it already took (they stay in the index
-- until vacuum, and a long transaction elsewhere keeps vacuum from removing them). NULLs start
-- at the beginning, where the engine starts again whenever a claim comes back short.
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

-- task_finish: records many successful attempts at once (start and end as the worker saw
-- them). Returns the ones it recorded; an attempt the worker no longer holds is left alone.
CREATE FUNCTION task_finish(worker_name TEXT, task_ids BIGINT[], task_attempts INTEGER[],
                            results TEXT[], result_tables JSONB[],
                            started_at TIMESTAMPTZ[], ended_at TIMESTAMPTZ[])
    RETURNS TABLE (id BIGINT, attempt INTEGER)
    -- A generic plan cannot see how many attempts the arrays hold and joins them the slow
    -- way (measured: 20x slower from the sixth call on); plan each call for its arrays.
    LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH done AS (
        UPDATE tasks t
           SET status = 'finished', start_time = v.start_at, end_time = v.end_at,
               result = v.result, result_table = v.result_table,
               progress_done = coalesce(t.progress_total, t.progress_done)
          FROM unnest(task_ids, task_attempts, results, result_tables, started_at, ended_at)
               AS v(id, attempt, result, result_table, start_at, end_at)
         WHERE t.id = v.id AND t.attempt = v.attempt AND t.worker_id = worker_name
           AND t.status = 'running'
     RETURNING t.id, t.attempt
    )
    SELECT done.id, done.attempt FROM done;
END $$;

-- task_fail: records a failed attempt. With attempts left (and retryable) the task goes back
-- to the queue after retry_base_ms * 2^(attempt - 1) (at most 5 minutes); otherwise it ends in
-- 'error' with every attempt's error in its result. A task someone asked to cancel ends
-- 'cancelled' instead. Returns the new status, NULL when the worker no longer holds it.
CREATE FUNCTION task_fail(worker_name TEXT, task_id BIGINT, task_attempt INTEGER,
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

-- task_cancelled: the program stopped because someone asked it to.
CREATE FUNCTION task_cancelled(worker_name TEXT, task_id BIGINT, task_attempt INTEGER)
    RETURNS BOOLEAN LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    UPDATE tasks SET status = 'cancelled', end_time = now(),
           result = 'Cancelled while running'
                    || CASE WHEN progress_total IS NOT NULL
                            THEN format(' (at %s of %s)', coalesce(progress_done, 0), progress_total)
                            ELSE '' END || '.'
     WHERE id = task_id AND attempt = task_attempt AND worker_id = worker_name AND status = 'running';
    RETURN FOUND;
END $$;

-- task_heartbeat: renews the leases of the attempts a worker holds (running or waiting in its
-- local queue). Returns those it still holds and whether each was asked to cancel; an attempt
-- missing from the answer was rescued and must stop.
CREATE FUNCTION task_heartbeat(worker_name TEXT, task_ids BIGINT[], task_attempts INTEGER[])
    RETURNS TABLE (id BIGINT, attempt INTEGER, cancel_requested BOOLEAN)
    LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH beat AS (
        UPDATE tasks t SET heartbeat_at = now()
          FROM unnest(task_ids, task_attempts) AS v(id, attempt)
         WHERE t.id = v.id AND t.attempt = v.attempt AND t.worker_id = worker_name
           AND t.status = 'running'
     RETURNING t.id, t.attempt, t.cancel_requested
    )
    SELECT beat.id, beat.attempt, beat.cancel_requested FROM beat;
END $$;

-- task_progress: stores a running attempt's progress. Returns whether it was asked to cancel,
-- or NULL when the worker no longer holds it (it must stop).
CREATE FUNCTION task_progress(worker_name TEXT, task_id BIGINT, task_attempt INTEGER,
                              done BIGINT, total BIGINT, message TEXT) RETURNS BOOLEAN
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    cancel BOOLEAN;
BEGIN
    UPDATE tasks SET progress_done = greatest(done, 0), progress_total = greatest(total, 0),
           progress_message = message
     WHERE id = task_id AND attempt = task_attempt AND worker_id = worker_name AND status = 'running'
    RETURNING cancel_requested INTO cancel;
    RETURN cancel;
END $$;

-- task_rescue_lost: running tasks whose worker sent no heartbeat for lease_seconds go back to
-- the queue, or end in 'error' when their attempts are spent ('cancelled' if someone asked).
-- Not within one lease of the server's start: after a restart every worker needs a moment to
-- reconnect and renew (or record) what it holds before anyone may judge it lost.
CREATE FUNCTION task_rescue_lost(lease_seconds DOUBLE PRECISION) RETURNS INTEGER
    LANGUAGE plpgsql AS $$
DECLARE
    rescued INTEGER;
BEGIN
    IF pg_postmaster_start_time() > now() - make_interval(secs => lease_seconds) THEN
        RETURN 0;
    END IF;
    UPDATE tasks SET
        attempts = attempts || jsonb_build_array(jsonb_build_object('attempt', attempt,
            'error', format('worker lost (%s sent no heartbeat for %s s)', worker_id, lease_seconds),
            'at', now())),
        status = CASE WHEN cancel_requested THEN 'cancelled'
                      WHEN attempt >= max_attempts THEN 'error' ELSE 'scheduled' END,
        end_time = CASE WHEN attempt >= max_attempts OR cancel_requested THEN now() END,
        run_after = now(),
        result = CASE WHEN cancel_requested THEN 'Cancelled; its worker was lost.'
                      WHEN attempt >= max_attempts THEN format('Failed after %s attempts: worker lost', attempt)
                      ELSE result END
     WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => lease_seconds);
    GET DIAGNOSTICS rescued = ROW_COUNT;
    RETURN rescued;
END $$;

-- task_requeue_interrupted: at a worker's shutdown, attempts it could not finish go back to
-- the queue without spending an attempt (they were interrupted, not failed), unless someone
-- asked to cancel them.
CREATE FUNCTION task_requeue_interrupted(worker_name TEXT, task_ids BIGINT[], task_attempts INTEGER[])
    RETURNS INTEGER LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    requeued INTEGER;
BEGIN
    UPDATE tasks t SET
        status = CASE WHEN t.cancel_requested THEN 'cancelled' ELSE 'scheduled' END,
        end_time = CASE WHEN t.cancel_requested THEN now() END,
        result = CASE WHEN t.cancel_requested THEN 'Cancelled during a worker shutdown.' ELSE t.result END,
        attempt = CASE WHEN t.cancel_requested THEN t.attempt ELSE t.attempt - 1 END,
        start_time = CASE WHEN t.cancel_requested THEN t.start_time END,
        run_after = now(), heartbeat_at = NULL,
        attempts = t.attempts || jsonb_build_array(jsonb_build_object('attempt', t.attempt,
            'error', 'interrupted by a worker shutdown; re-queued', 'at', now()))
      FROM unnest(task_ids, task_attempts) AS v(id, attempt)
     WHERE t.id = v.id AND t.attempt = v.attempt AND t.worker_id = worker_name
       AND t.status = 'running';
    GET DIAGNOSTICS requeued = ROW_COUNT;
    RETURN requeued;
END $$;

-- task_run_sql_function: runs a 'sql' program's function with the task's parameters (the
-- engine calls it inside the transaction that records the outcome, under the program's
-- statement_timeout). A function returning text gives text; one returning rows gives a table:
-- its column names and the rows' cells as text (JSON nulls for NULL).
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
