-- The task engine: the app's functions, program schedules, task bookkeeping, and the four
-- operations of our specification as SQL functions a DBA can call from psql:
--   SELECT * FROM get_programs();
--   SELECT run_program('hello_world', NULL);
--   SELECT * FROM get_task_result(6);
--   SELECT register_program('new_program', 'new_function');
-- The app calls these same functions, so each rule lives here, once.

-- The Rust functions compiled into the running app, with their parameter schemas. The app
-- writes this table at start; register_program and run_program read it.
CREATE TABLE program_functions (
    name            TEXT PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    description     TEXT NOT NULL DEFAULT '',
    -- [{"name", "type": text|int|bool|date|enum, "required", "default", "help",
    --   "choices" (enum), "min"/"max" (int)}]
    parameters      JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(parameters) = 'array'),
    timeout_seconds INTEGER NOT NULL CHECK (timeout_seconds > 0),
    max_attempts    INTEGER NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE programs
    ADD CONSTRAINT programs_function_name_fkey
        FOREIGN KEY (function_name) REFERENCES program_functions (name),
    ADD COLUMN enabled     BOOLEAN NOT NULL DEFAULT true,
    -- 'every 15 minutes' or a five-field cron line; NULL: runs only when asked.
    ADD COLUMN schedule    TEXT CHECK (char_length(schedule) BETWEEN 1 AND 100),
    -- When the schedule next fires; advanced by whichever node claims the firing.
    ADD COLUMN next_run_at TIMESTAMPTZ;
CREATE INDEX programs_next_run_at_idx ON programs (next_run_at) WHERE schedule IS NOT NULL;

ALTER TABLE tasks
    ADD COLUMN max_attempts     INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    ADD COLUMN timeout_seconds  INTEGER NOT NULL DEFAULT 300 CHECK (timeout_seconds > 0),
    -- Set by cancel_task on a running task; the worker passes it to the program.
    ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN progress_done    BIGINT CHECK (progress_done >= 0),
    ADD COLUMN progress_total   BIGINT CHECK (progress_total >= 0),
    ADD COLUMN progress_message TEXT,
    -- A table result: {"columns": [...], "rows": [[...], ...]}; `result` holds its text form.
    ADD COLUMN result_table     JSONB,
    -- One entry per ended attempt: {"attempt", "error", "at"}.
    ADD COLUMN attempts         JSONB NOT NULL DEFAULT '[]'::jsonb;

-- Workers LISTEN on this channel. A trigger (not the callers) sends it, so a task queued or
-- re-queued any way at all (run_program, a retry, a DBA's INSERT) wakes them. The payload is
-- empty so PostgreSQL folds the notices of one transaction into one.
CREATE FUNCTION tasks_notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bookstore_tasks', '');
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_notify_queued
    AFTER INSERT OR UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status = 'scheduled')
    EXECUTE FUNCTION tasks_notify_queued();

-- Errors raised by these functions carry a readable message and, in DETAIL, a JSON object
-- {"code": "...", "fields": {"name": "problem"}} that the app turns into form and API errors.
--
-- task_parameters_check: checks parameters against a function's schema. Returns them complete
-- (defaults filled in, "5" for an int taken as 5) or raises ONE error listing every problem.
CREATE FUNCTION task_parameters_check(schema JSONB, params JSONB) RETURNS JSONB
    LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    spec     JSONB;
    pname    TEXT;
    kind     TEXT;
    val      JSONB;
    txt      TEXT;
    num      BIGINT;
    day      DATE;
    problems JSONB := '{}'::jsonb;
    checked  JSONB := '{}'::jsonb;
    key      TEXT;
BEGIN
    IF params IS NULL OR params = 'null'::jsonb THEN
        params := '{}'::jsonb;
    END IF;
    IF jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'invalid parameters: they must be a JSON object like {"name": value}'
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_parameters", "fields": {"parameters": "must be a JSON object"}}';
    END IF;
    FOR key IN SELECT jsonb_object_keys(params) LOOP
        IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(schema) s WHERE s->>'name' = key) THEN
            problems := problems || jsonb_build_object(key, 'is not a parameter of this program');
        END IF;
    END LOOP;
    FOR spec IN SELECT * FROM jsonb_array_elements(schema) LOOP
        pname := spec->>'name';
        kind := spec->>'type';
        val := params->pname;
        -- An empty form field is "not given" (except for text, where empty is a value).
        IF val IS NULL OR val = 'null'::jsonb
           OR (kind <> 'text' AND jsonb_typeof(val) = 'string' AND btrim(val #>> '{}') = '') THEN
            IF spec->'default' IS NOT NULL AND spec->'default' <> 'null'::jsonb THEN
                checked := checked || jsonb_build_object(pname, spec->'default');
            ELSIF coalesce((spec->>'required')::boolean, false) THEN
                problems := problems || jsonb_build_object(pname, 'is required');
            END IF;
            CONTINUE;
        END IF;
        IF kind = 'text' THEN
            IF jsonb_typeof(val) <> 'string' THEN
                problems := problems || jsonb_build_object(pname, 'must be text');
                CONTINUE;
            END IF;
            txt := val #>> '{}';
            IF char_length(txt) > coalesce((spec->>'max_length')::int, 10000) THEN
                problems := problems || jsonb_build_object(pname,
                    format('must be at most %s characters', coalesce((spec->>'max_length')::int, 10000)));
                CONTINUE;
            END IF;
            checked := checked || jsonb_build_object(pname, txt);
        ELSIF kind = 'int' THEN
            IF jsonb_typeof(val) = 'number' AND val::text ~ '^-?[0-9]{1,18}$' THEN
                num := val::text::bigint;
            ELSIF jsonb_typeof(val) = 'string' AND btrim(val #>> '{}') ~ '^[+-]?[0-9]{1,18}$' THEN
                num := btrim(val #>> '{}')::bigint;
            ELSE
                problems := problems || jsonb_build_object(pname, 'must be a whole number');
                CONTINUE;
            END IF;
            IF (spec ? 'min' AND num < (spec->>'min')::bigint)
               OR (spec ? 'max' AND num > (spec->>'max')::bigint) THEN
                problems := problems || jsonb_build_object(pname, format('must be between %s and %s',
                    coalesce(spec->>'min', '-9223372036854775808'), coalesce(spec->>'max', '9223372036854775807')));
                CONTINUE;
            END IF;
            checked := checked || jsonb_build_object(pname, num);
        ELSIF kind = 'bool' THEN
            IF jsonb_typeof(val) = 'boolean' THEN
                checked := checked || jsonb_build_object(pname, val);
            ELSIF jsonb_typeof(val) = 'string' AND lower(btrim(val #>> '{}')) IN ('true', 'on', 'yes', '1') THEN
                checked := checked || jsonb_build_object(pname, true);
            ELSIF jsonb_typeof(val) = 'string' AND lower(btrim(val #>> '{}')) IN ('false', 'off', 'no', '0') THEN
                checked := checked || jsonb_build_object(pname, false);
            ELSE
                problems := problems || jsonb_build_object(pname, 'must be true or false');
            END IF;
        ELSIF kind = 'date' THEN
            txt := btrim(coalesce(val #>> '{}', ''));
            IF jsonb_typeof(val) <> 'string' OR txt !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
                problems := problems || jsonb_build_object(pname, 'must be a date like 2026-11-25');
                CONTINUE;
            END IF;
            BEGIN
                day := txt::date;
            EXCEPTION WHEN others THEN
                problems := problems || jsonb_build_object(pname, 'is not a real date');
                CONTINUE;
            END;
            checked := checked || jsonb_build_object(pname, to_char(day, 'YYYY-MM-DD'));
        ELSIF kind = 'enum' THEN
            IF jsonb_typeof(val) <> 'string' OR NOT (spec->'choices') ? (val #>> '{}') THEN
                problems := problems || jsonb_build_object(pname, 'must be one of: ' ||
                    (SELECT string_agg(c, ', ') FROM jsonb_array_elements_text(spec->'choices') c));
                CONTINUE;
            END IF;
            checked := checked || jsonb_build_object(pname, val);
        ELSE
            problems := problems || jsonb_build_object(pname, format('has an unknown type %s', kind));
        END IF;
    END LOOP;
    IF problems <> '{}'::jsonb THEN
        RAISE EXCEPTION 'invalid parameters: %',
            (SELECT string_agg(k || ' ' || v, '; ' ORDER BY k) FROM jsonb_each_text(problems) AS p(k, v))
            USING ERRCODE = '22023',
                  DETAIL = jsonb_build_object('code', 'invalid_parameters', 'fields', problems)::text;
    END IF;
    RETURN checked;
END $$;

-- get_programs(): every program, with its function's schema and its last run.
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
           WHERE t.program_id = p.id ORDER BY t.created_at DESC, t.id DESC LIMIT 1
      ) last ON true
     ORDER BY p.name
$$;

-- run_program(name, params): validates and queues a task; returns its id.
CREATE FUNCTION run_program(name TEXT, params JSONB) RETURNS BIGINT
    LANGUAGE plpgsql AS $$
DECLARE
    prog    programs%ROWTYPE;
    fn      program_functions%ROWTYPE;
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
    INSERT INTO tasks (program_id, parameters, max_attempts, timeout_seconds)
    VALUES (prog.id, task_parameters_check(fn.parameters, params), fn.max_attempts, fn.timeout_seconds)
    RETURNING tasks.id INTO new_id;
    RETURN new_id;
END $$;

-- get_task_result(task_id): status, times and result of one task.
CREATE FUNCTION get_task_result(task_id BIGINT)
    RETURNS TABLE (id BIGINT, program TEXT, status TEXT, parameters JSONB, created_at TIMESTAMPTZ,
                   start_time TIMESTAMPTZ, end_time TIMESTAMPTZ, attempt INTEGER, result TEXT)
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
        SELECT t.id, p.name, t.status, t.parameters, t.created_at, t.start_time, t.end_time,
               t.attempt, t.result
          FROM tasks t JOIN programs p ON p.id = t.program_id
         WHERE t.id = get_task_result.task_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no task with id %', coalesce(task_id::text, 'NULL')
            USING ERRCODE = 'P0002', DETAIL = '{"code": "task_not_found", "fields": {}}';
    END IF;
END $$;

-- register_program(name, function_name): a new program for a function the app has.
CREATE FUNCTION register_program(name TEXT, function_name TEXT) RETURNS BIGINT
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
    IF NOT EXISTS (SELECT 1 FROM program_functions f WHERE f.name = register_program.function_name) THEN
        RAISE EXCEPTION 'unknown function %: the app has %', coalesce(register_program.function_name, 'NULL'),
            (SELECT string_agg(f.name, ', ' ORDER BY f.name) FROM program_functions f)
            USING ERRCODE = 'P0002',
                  DETAIL = '{"code": "unknown_function", "fields": {"function_name": "is not a function of this app"}}';
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

-- cancel_task(task_id): a scheduled task never starts; a running one is asked to stop (its
-- program checks the flag). Returns the task's status after the call.
CREATE FUNCTION cancel_task(task_id BIGINT) RETURNS TEXT
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
