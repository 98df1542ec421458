-- Back to engine v1: drop the engine's functions and SQL-function programs.
DROP FUNCTION task_run_sql_function(TEXT, JSONB);
DROP FUNCTION task_requeue_interrupted(TEXT, BIGINT[], INTEGER[]);
DROP FUNCTION task_rescue_lost(DOUBLE PRECISION);
DROP FUNCTION task_progress(TEXT, BIGINT, INTEGER, BIGINT, BIGINT, TEXT);
DROP FUNCTION task_heartbeat(TEXT, BIGINT[], INTEGER[]);
DROP FUNCTION task_cancelled(TEXT, BIGINT, INTEGER);
DROP FUNCTION task_fail(TEXT, BIGINT, INTEGER, TEXT, BOOLEAN, BIGINT);
DROP FUNCTION task_finish(TEXT, BIGINT[], INTEGER[], TEXT[], JSONB[], TIMESTAMPTZ[], TIMESTAMPTZ[]);
DROP FUNCTION task_claim(TEXT, INTEGER, TIMESTAMPTZ, BIGINT);
-- Programs of SQL functions (and their tasks) cannot exist in v1.
DELETE FROM tasks WHERE program_id IN (
    SELECT p.id FROM programs p JOIN program_functions f ON f.name = p.function_name WHERE f.kind = 'sql');
DELETE FROM programs WHERE function_name IN (SELECT name FROM program_functions WHERE kind = 'sql');
DELETE FROM program_functions WHERE kind = 'sql';
CREATE OR REPLACE FUNCTION run_program(name TEXT, params JSONB) RETURNS BIGINT
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

DROP FUNCTION task_sql_function(TEXT);
ALTER TABLE program_functions DROP COLUMN kind;
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
           WHERE t.program_id = p.id ORDER BY t.created_at DESC, t.id DESC LIMIT 1
      ) last ON true
     ORDER BY p.name
$$;

DROP INDEX tasks_created_at_brin;
DROP INDEX tasks_ended_badly_idx;
DROP INDEX tasks_program_id_idx;
CREATE INDEX tasks_created_at_idx ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_status_created_at_idx ON tasks (status, created_at DESC);
CREATE INDEX tasks_program_id_created_at_idx ON tasks (program_id, created_at DESC);
DROP INDEX tasks_running_worker_idx;
CREATE INDEX tasks_running_heartbeat_idx ON tasks (heartbeat_at) WHERE status = 'running';
