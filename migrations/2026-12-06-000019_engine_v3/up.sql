-- Engine v3 (issue 18): priorities, unique tasks, limits per program across the cluster, tasks
-- that wait for other tasks, batches with a callback, snooze and bulk enqueue. As before, each
-- rule lives here once: the app, the API and a DBA in psql call these same functions.
--
-- The hot path stays as it was for tasks that use none of this: a plain task is in exactly one
-- queue index, and the trigger that releases dependents and counts batches fires only for
-- rows flagged as having either (its WHEN is checked before any function is called).

-- Priority: higher runs first (the claim orders by priority, then queue order). A program's
-- default applies when run_program is not given one.
ALTER TABLE programs
    ADD COLUMN priority    INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    -- At most this many of the program's tasks claimed at once in the whole cluster.
    ADD COLUMN max_running INTEGER CHECK (max_running BETWEEN 1 AND 10000),
    -- At most this many of its tasks started in any 60 seconds.
    ADD COLUMN per_minute  INTEGER CHECK (per_minute BETWEEN 1 AND 100000);

-- What a function's programs start with (the app writes it; import_catalog: one at a time).
ALTER TABLE program_functions ADD COLUMN default_max_running INTEGER
    CHECK (default_max_running BETWEEN 1 AND 10000);
UPDATE programs SET max_running = 1 WHERE function_name = 'import_catalog' AND max_running IS NULL;

ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
-- 'pending': waits for the tasks it was queued after (task_dependencies); not claimable.
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('pending', 'scheduled', 'running', 'finished', 'error', 'cancelled'));

ALTER TABLE tasks
    ADD COLUMN priority        INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    -- Its program had a limit when it was queued (set_program_options keeps this true): such
    -- tasks are claimed through their program's lock, from an index of their own.
    ADD COLUMN limited         BOOLEAN NOT NULL DEFAULT false,
    -- While held, no other task of the program may be queued with the same key.
    ADD COLUMN unique_key      TEXT CHECK (char_length(unique_key) BETWEEN 1 AND 200),
    -- How long after it ends the key stays taken (NULL: it is free once the task ends).
    ADD COLUMN unique_for      INTERVAL CHECK (unique_for >= interval '0'),
    -- Set when a later run_program found the key's task over and took the key.
    ADD COLUMN unique_released BOOLEAN NOT NULL DEFAULT false,
    -- Pending: how many of the tasks it waits for have not finished yet.
    ADD COLUMN upstream_left   INTEGER NOT NULL DEFAULT 0 CHECK (upstream_left >= 0),
    -- Some task waits for this one (task_dependencies.upstream_id).
    ADD COLUMN has_dependents  BOOLEAN NOT NULL DEFAULT false,
    -- A member of this batch.
    ADD COLUMN batch_id        BIGINT;

-- Every task is updated at least twice after its insert (claimed, ended), and neither update
-- can be HOT (the status decides which partial indexes hold it). With room left on each page
-- the new version goes beside the old one instead of onto a new page: measured on the no-op
-- run of 40,000 tasks, 10 runs alternating, 28.3k tasks/s at 70 against 25.6k at 100 (85: no
-- gain; 50: no more than 70). The price: ended tasks take about 40% more heap.
ALTER TABLE tasks SET (fillfactor = 70);

-- The queue, in claim order. Plain tasks and limited ones are in separate indexes, so neither
-- claim wades through the other's entries.
DROP INDEX tasks_queue_idx;
CREATE INDEX tasks_queue_idx ON tasks (priority DESC, run_after, id)
    WHERE status = 'scheduled' AND NOT limited;
CREATE INDEX tasks_limited_queue_idx ON tasks (program_id, priority DESC, run_after, id)
    WHERE status = 'scheduled' AND limited;
-- Counting a limited program's claimed tasks.
CREATE INDEX tasks_limited_running_idx ON tasks (program_id)
    WHERE status = 'running' AND limited;
-- The race guard of unique tasks: one holder per (program, key).
CREATE UNIQUE INDEX tasks_unique_key_idx ON tasks (program_id, unique_key)
    WHERE unique_key IS NOT NULL AND NOT unique_released;
CREATE INDEX tasks_batch_idx ON tasks (batch_id) WHERE batch_id IS NOT NULL;

-- Which task waits for which. No foreign keys: one on tasks would add a trigger to every
-- update of every task; run_program checks the ids instead, and pruning removes old edges.
-- The key leads with upstream_id: a task's end looks up what waits for it on every end, so
-- that lookup gets the index no plan can pass over (a second-column match of the other order
-- was chosen on a young table with no statistics, and scanned the whole index per end).
CREATE TABLE task_dependencies (
    task_id     BIGINT NOT NULL,
    upstream_id BIGINT NOT NULL,
    PRIMARY KEY (upstream_id, task_id),
    CHECK (task_id <> upstream_id)
);
CREATE INDEX task_dependencies_task_idx ON task_dependencies (task_id);

-- Starts of rate-limited programs' tasks in the last minute (the claim writes and trims it).
CREATE TABLE task_rate_starts (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program_id BIGINT NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    started_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX task_rate_starts_idx ON task_rate_starts (program_id, started_at);

-- A group of tasks with a callback queued once when every member has ended.
CREATE TABLE task_batches (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size                INTEGER NOT NULL CHECK (size >= 0),
    finished            INTEGER NOT NULL DEFAULT 0 CHECK (finished >= 0),
    -- Ended in error or cancelled.
    failed              INTEGER NOT NULL DEFAULT 0 CHECK (failed >= 0),
    callback_program_id BIGINT REFERENCES programs (id) ON DELETE SET NULL,
    callback_parameters JSONB,
    callback_task_id    BIGINT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at            TIMESTAMPTZ,
    created_by          TEXT,
    -- Why the callback could not be queued when the batch ended (its program disabled or
    -- its parameters no longer valid): the members' ends are recorded all the same.
    callback_error      TEXT,
    CHECK (finished + failed <= size)
);
-- A callback task finds its batch (task_batch(), the task page).
CREATE UNIQUE INDEX task_batches_callback_idx ON task_batches (callback_task_id)
    WHERE callback_task_id IS NOT NULL;

-- Errors raised below follow the engine's convention: a readable message, and in DETAIL
-- {"code": "...", "fields": {...}} for the app's forms and API.

-- task_enqueue: the one place a task is queued. Checks the program and its parameters, then
-- inserts; with a unique key held by another task, returns that task instead (existed =
-- true). Tasks given in `after` must exist; the new one waits for those not yet finished,
-- and is cancelled at once when one of them already failed.
-- (Its parameters are named want_* so that they never shadow a column.)
CREATE FUNCTION task_enqueue(program_name TEXT, params JSONB, want_priority INTEGER DEFAULT NULL,
                             want_unique_key TEXT DEFAULT NULL, want_unique_for INTERVAL DEFAULT NULL,
                             want_after BIGINT[] DEFAULT NULL, batch BIGINT DEFAULT NULL,
                             OUT task_id BIGINT, OUT existed BOOLEAN)
    LANGUAGE plpgsql AS $$
DECLARE
    prog      programs%ROWTYPE;
    fn        program_functions%ROWTYPE;
    checked   JSONB;
    upstream  RECORD;
    failed_upstream BIGINT;
    left_     INTEGER := 0;
    holder    RECORD;
BEGIN
    SELECT * INTO prog FROM programs p WHERE p.name = program_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no program named %', coalesce(program_name, 'NULL')
            USING ERRCODE = 'P0002', HINT = 'SELECT * FROM get_programs() lists the programs.',
                  DETAIL = '{"code": "program_not_found", "fields": {"program": "no such program"}}';
    END IF;
    IF NOT prog.enabled THEN
        RAISE EXCEPTION 'program % is disabled', prog.name
            USING ERRCODE = '55000',
                  DETAIL = '{"code": "program_disabled", "fields": {"program": "is disabled"}}';
    END IF;
    IF want_priority IS NOT NULL AND want_priority NOT BETWEEN -100 AND 100 THEN
        RAISE EXCEPTION 'invalid priority %: use a whole number from -100 to 100 (higher runs first)', want_priority
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_option", "fields": {"priority": "must be from -100 to 100"}}';
    END IF;
    IF want_unique_key IS NOT NULL AND (char_length(want_unique_key) NOT BETWEEN 1 AND 200
                                   OR want_unique_key ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'invalid unique key: use 1 to 200 characters, no control characters'
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_option", "fields": {"unique_key": "must be 1 to 200 characters, no control characters"}}';
    END IF;
    IF want_unique_for IS NOT NULL AND (want_unique_key IS NULL OR want_unique_for < interval '0'
                                   OR want_unique_for > interval '366 days') THEN
        RAISE EXCEPTION 'invalid unique_for: give it with a unique key, from 0 to 366 days'
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_option", "fields": {"unique_for": "needs a unique key and must be from 0 to 366 days"}}';
    END IF;
    IF cardinality(want_after) > 1000 THEN
        RAISE EXCEPTION 'a task can wait for at most 1000 others'
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_option", "fields": {"after": "at most 1000 tasks"}}';
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

    -- The tasks it waits for: locked (so none ends unseen while this commits) and marked, so
    -- their end releases or cancels this one.
    IF cardinality(want_after) > 0 THEN
        SELECT x.missing INTO upstream
          FROM unnest(want_after) AS x(missing)
         WHERE x.missing IS NULL OR NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = x.missing)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'cannot wait for task %: there is no such task', coalesce(upstream.missing::text, 'NULL')
                USING ERRCODE = 'P0002',
                      DETAIL = json_build_object('code', 'unknown_upstream', 'fields',
                                   json_build_object('after', format('no task %s', upstream.missing)))::text;
        END IF;
        -- In id order, so two callers waiting for the same tasks cannot deadlock.
        PERFORM 1 FROM tasks t WHERE t.id = ANY (want_after) ORDER BY t.id FOR NO KEY UPDATE;
        WITH marked AS (
            UPDATE tasks t SET has_dependents = true
             WHERE t.id = ANY (want_after)
         RETURNING t.id, t.status
        )
        SELECT count(*) FILTER (WHERE m.status NOT IN ('finished', 'error', 'cancelled')),
               min(m.id) FILTER (WHERE m.status IN ('error', 'cancelled'))
          INTO left_, failed_upstream FROM marked m;
    END IF;

    LOOP
        -- Without a key, a plain insert: ON CONFLICT's speculative insertion costs every
        -- task, and a plain task has nothing to conflict with.
        IF want_unique_key IS NULL THEN
            INSERT INTO tasks (program_id, parameters, max_attempts, timeout_seconds, queued_by,
                               priority, limited, unique_key, unique_for, batch_id,
                               status, upstream_left, end_time, result)
            VALUES (prog.id, checked, fn.max_attempts, fn.timeout_seconds, audit_actor(),
                    coalesce(want_priority, prog.priority),
                    prog.max_running IS NOT NULL OR prog.per_minute IS NOT NULL,
                    want_unique_key, want_unique_for, batch,
                    CASE WHEN failed_upstream IS NOT NULL THEN 'cancelled'
                         WHEN left_ > 0 THEN 'pending' ELSE 'scheduled' END,
                    CASE WHEN failed_upstream IS NOT NULL THEN 0 ELSE left_ END,
                    CASE WHEN failed_upstream IS NOT NULL THEN now() END,
                    CASE WHEN failed_upstream IS NOT NULL
                         THEN format('Cancelled before it started: task %s, which it waits for, did not finish.',
                                     failed_upstream) END)
            RETURNING tasks.id INTO task_id;
        ELSE
            INSERT INTO tasks (program_id, parameters, max_attempts, timeout_seconds, queued_by,
                               priority, limited, unique_key, unique_for, batch_id,
                               status, upstream_left, end_time, result)
            VALUES (prog.id, checked, fn.max_attempts, fn.timeout_seconds, audit_actor(),
                    coalesce(want_priority, prog.priority),
                    prog.max_running IS NOT NULL OR prog.per_minute IS NOT NULL,
                    want_unique_key, want_unique_for, batch,
                    CASE WHEN failed_upstream IS NOT NULL THEN 'cancelled'
                         WHEN left_ > 0 THEN 'pending' ELSE 'scheduled' END,
                    CASE WHEN failed_upstream IS NOT NULL THEN 0 ELSE left_ END,
                    CASE WHEN failed_upstream IS NOT NULL THEN now() END,
                    CASE WHEN failed_upstream IS NOT NULL
                         THEN format('Cancelled before it started: task %s, which it waits for, did not finish.',
                                     failed_upstream) END)
            ON CONFLICT (program_id, unique_key) WHERE unique_key IS NOT NULL AND NOT unique_released
            DO NOTHING
            RETURNING tasks.id INTO task_id;
        END IF;
        IF task_id IS NOT NULL THEN
            existed := false;
            EXIT;
        END IF;
        -- The key is held. By a task still queued or running, or one that ended within its
        -- unique_for: that is the answer. Otherwise the key is free: release it and insert
        -- again (the unique index, not this read, decides who gets it).
        SELECT t.id, t.status, t.end_time, t.unique_for INTO holder
          FROM tasks t
         WHERE t.program_id = prog.id AND t.unique_key = want_unique_key
           AND NOT t.unique_released
           FOR UPDATE;
        IF NOT FOUND THEN
            CONTINUE;
        END IF;
        IF holder.status NOT IN ('finished', 'error', 'cancelled')
           OR holder.end_time + coalesce(holder.unique_for, interval '0') > now() THEN
            task_id := holder.id;
            existed := true;
            RETURN;
        END IF;
        UPDATE tasks t SET unique_released = true WHERE t.id = holder.id;
    END LOOP;

    IF cardinality(want_after) > 0 THEN
        INSERT INTO task_dependencies (task_id, upstream_id)
        SELECT task_enqueue.task_id, u FROM (SELECT DISTINCT unnest(want_after)) AS x(u);
    END IF;
    IF batch IS NULL THEN
        PERFORM audit_record('task.queued', 'task ' || task_id, jsonb_build_object('program', prog.name));
    END IF;
END $$;

-- run_program(name, params [, priority, unique_key, unique_for, after]): queues a task and
-- returns its id (with a unique key already held: the holder's id).
--   SELECT run_program('sales_report', '{"days": 7}', priority => 10);
--   SELECT run_program('send_receipt', '{"order": 42}', unique_key => 'order-42');
--   SELECT run_program('sales_report', NULL, after => ARRAY[12, 13]);
DROP FUNCTION run_program(TEXT, JSONB);
CREATE FUNCTION run_program(name TEXT, params JSONB, priority INTEGER DEFAULT NULL,
                            unique_key TEXT DEFAULT NULL, unique_for INTERVAL DEFAULT NULL,
                            after BIGINT[] DEFAULT NULL) RETURNS BIGINT
    LANGUAGE sql AS $$
    SELECT e.task_id FROM task_enqueue(name, params, priority, unique_key, unique_for, after) e
$$;

-- run_programs(name, params[] [, priority]): queues one task per element in one statement and
-- returns their ids in order. One bad element refuses them all, naming it.
--   SELECT * FROM run_programs('hello_world', ARRAY['{}', '{}']::jsonb[]);
CREATE FUNCTION run_programs(name TEXT, params JSONB[], priority INTEGER DEFAULT NULL,
                             batch BIGINT DEFAULT NULL)
    RETURNS SETOF BIGINT
    LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    prog  programs%ROWTYPE;
    fn    program_functions%ROWTYPE;
    n     INTEGER;
    ids   BIGINT[];
BEGIN
    SELECT * INTO prog FROM programs p WHERE p.name = run_programs.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no program named %', coalesce(run_programs.name, 'NULL')
            USING ERRCODE = 'P0002', HINT = 'SELECT * FROM get_programs() lists the programs.',
                  DETAIL = '{"code": "program_not_found", "fields": {"program": "no such program"}}';
    END IF;
    IF NOT prog.enabled THEN
        RAISE EXCEPTION 'program % is disabled', prog.name
            USING ERRCODE = '55000',
                  DETAIL = '{"code": "program_disabled", "fields": {"program": "is disabled"}}';
    END IF;
    IF priority IS NOT NULL AND priority NOT BETWEEN -100 AND 100 THEN
        RAISE EXCEPTION 'invalid priority %: use a whole number from -100 to 100 (higher runs first)', priority
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_option", "fields": {"priority": "must be from -100 to 100"}}';
    END IF;
    IF cardinality(params) > 100000 THEN
        RAISE EXCEPTION 'at most 100000 tasks in one call'
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_parameters", "fields": {"parameters": "at most 100000 tasks in one call"}}';
    END IF;
    SELECT * INTO fn FROM program_functions f WHERE f.name = prog.function_name;
    BEGIN
        WITH queued AS (
        INSERT INTO tasks (program_id, parameters, max_attempts, timeout_seconds, queued_by,
                           priority, limited, batch_id)
        SELECT prog.id,
               CASE WHEN fn.kind = 'sql' THEN task_sql_parameters(p)
                    ELSE task_parameters_check(fn.parameters, p) END,
               fn.max_attempts, fn.timeout_seconds, audit_actor(),
               coalesce(priority, prog.priority),
               prog.max_running IS NOT NULL OR prog.per_minute IS NOT NULL, batch
          FROM unnest(params) WITH ORDINALITY AS u(p, ord)
         ORDER BY u.ord
        RETURNING tasks.id
        )
        SELECT coalesce(array_agg(q.id ORDER BY q.id), '{}') INTO ids FROM queued q;
    EXCEPTION WHEN SQLSTATE '22023' THEN
        -- Which element? Check them one by one (only on this refusal's path).
        n := 0;
        FOR n IN 1 .. cardinality(params) LOOP
            BEGIN
                PERFORM CASE WHEN fn.kind = 'sql' THEN task_sql_parameters(params[n])
                             ELSE task_parameters_check(fn.parameters, params[n]) END;
            EXCEPTION WHEN SQLSTATE '22023' THEN
                RAISE EXCEPTION 'task % of %: %', n, cardinality(params), SQLERRM
                    USING ERRCODE = '22023',
                          DETAIL = '{"code": "invalid_parameters", "fields": {"parameters": "element '
                                   || n || ' is invalid"}}';
            END;
        END LOOP;
        RAISE;
    END;
    IF batch IS NULL AND cardinality(ids) > 0 THEN
        PERFORM audit_record('task.queued', format('tasks %s to %s', ids[1], ids[cardinality(ids)]),
                             jsonb_build_object('program', prog.name, 'count', cardinality(ids)));
    END IF;
    RETURN QUERY SELECT unnest(ids);
END $$;

-- A SQL program's parameters: any JSON object (NULL is {}).
CREATE FUNCTION task_sql_parameters(params JSONB) RETURNS JSONB
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    params := coalesce(nullif(params, 'null'::jsonb), '{}'::jsonb);
    IF jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'invalid parameters: they must be a JSON object like {"name": value}'
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_parameters", "fields": {"parameters": "must be a JSON object"}}';
    END IF;
    RETURN params;
END $$;

-- run_batch(name, params[] [, callback, callback_params]): queues one task per element as a
-- batch; when every member has ended, the callback program is queued once (its task reads
-- the batch's counts with task_batch()). Returns the batch's id.
--   SELECT run_batch('hello_world', ARRAY['{}', '{}']::jsonb[], callback => 'batch_summary');
CREATE FUNCTION run_batch(name TEXT, params JSONB[], callback TEXT DEFAULT NULL,
                          callback_params JSONB DEFAULT NULL) RETURNS BIGINT
    LANGUAGE plpgsql AS $$
DECLARE
    callback_program programs%ROWTYPE;
    new_batch        BIGINT;
BEGIN
    IF callback IS NOT NULL THEN
        SELECT * INTO callback_program FROM programs p WHERE p.name = callback;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no program named % (the callback)', callback
                USING ERRCODE = 'P0002',
                      DETAIL = '{"code": "program_not_found", "fields": {"callback": "no such program"}}';
        END IF;
        -- Its parameters are checked now, as if it were queued now (it is queued later).
        PERFORM CASE WHEN f.kind = 'sql' THEN task_sql_parameters(callback_params)
                     ELSE task_parameters_check(f.parameters, callback_params) END
           FROM program_functions f WHERE f.name = callback_program.function_name;
    END IF;
    INSERT INTO task_batches (size, callback_program_id, callback_parameters, created_by)
    VALUES (coalesce(cardinality(params), 0), callback_program.id, callback_params, audit_actor())
    RETURNING id INTO new_batch;
    PERFORM run_programs(name, params, NULL, new_batch);
    PERFORM audit_record('batch.queued', 'batch ' || new_batch,
                         jsonb_build_object('program', name, 'size', coalesce(cardinality(params), 0),
                                            'callback', callback));
    -- An empty batch is over at once.
    PERFORM task_batch_check(new_batch);
    RETURN new_batch;
END $$;

-- Queues a batch's callback when every member has ended, once: the batch row's lock orders
-- the members' last ends, and callback_task_id says it was done.
CREATE FUNCTION task_batch_check(batch BIGINT) RETURNS VOID
    LANGUAGE plpgsql AS $$
DECLARE
    b       task_batches%ROWTYPE;
    program TEXT;
BEGIN
    SELECT * INTO b FROM task_batches WHERE id = batch FOR UPDATE;
    IF NOT FOUND OR b.ended_at IS NOT NULL OR b.finished + b.failed < b.size THEN
        RETURN;
    END IF;
    UPDATE task_batches SET ended_at = now() WHERE id = batch;
    IF b.callback_program_id IS NOT NULL THEN
        SELECT p.name INTO program FROM programs p WHERE p.id = b.callback_program_id;
        -- This runs inside the statement that ended the last member (a worker's batch of
        -- outcomes, say): a callback that cannot be queued must not undo those ends.
        BEGIN
            UPDATE task_batches
               SET callback_task_id = (SELECT e.task_id FROM task_enqueue(program, b.callback_parameters) e)
             WHERE id = batch;
        EXCEPTION WHEN OTHERS THEN
            UPDATE task_batches SET callback_error = SQLERRM WHERE id = batch;
        END;
    END IF;
END $$;

-- After a status change of a task that has dependents or is in a batch (the trigger's WHEN):
-- a finished task releases the tasks waiting only for it; one that failed or was cancelled
-- cancels everything waiting for it, transitively, each naming the task it waited for; a
-- batch member's end is counted (and a retry uncounts it).
CREATE FUNCTION tasks_status_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    ended_now BOOLEAN := NEW.status IN ('finished', 'error', 'cancelled');
    ended_was BOOLEAN := OLD.status IN ('finished', 'error', 'cancelled');
BEGIN
    IF NEW.has_dependents AND ended_now AND NOT ended_was THEN
        IF NEW.status = 'finished' THEN
            UPDATE tasks t
               SET upstream_left = t.upstream_left - 1,
                   status = CASE WHEN t.upstream_left = 1 THEN 'scheduled' ELSE 'pending' END,
                   run_after = CASE WHEN t.upstream_left = 1 THEN now() ELSE t.run_after END
              FROM task_dependencies d
             WHERE d.upstream_id = NEW.id AND t.id = d.task_id AND t.status = 'pending';
        ELSE
            WITH RECURSIVE doomed (id, because) AS (
                SELECT d.task_id, NEW.id FROM task_dependencies d WHERE d.upstream_id = NEW.id
                UNION
                SELECT d.task_id, doomed.id FROM doomed JOIN task_dependencies d ON d.upstream_id = doomed.id
            )
            UPDATE tasks t
               SET status = 'cancelled', end_time = now(), upstream_left = 0,
                   result = format('Cancelled before it started: task %s, which it waits for, %s.',
                                   doomed.because,
                                   CASE WHEN doomed.because = NEW.id AND NEW.status = 'error' THEN 'failed'
                                        ELSE 'was cancelled' END)
              FROM (SELECT DISTINCT ON (id) id, because FROM doomed ORDER BY id, because) doomed
             WHERE t.id = doomed.id AND t.status = 'pending';
        END IF;
    END IF;
    IF NEW.batch_id IS NOT NULL AND ended_now <> ended_was THEN
        UPDATE task_batches b
           SET finished = b.finished + CASE WHEN NEW.status = 'finished' THEN 1
                                            WHEN OLD.status = 'finished' THEN -1 ELSE 0 END,
               failed = b.failed + CASE WHEN NEW.status IN ('error', 'cancelled') THEN 1
                                        WHEN OLD.status IN ('error', 'cancelled') THEN -1 ELSE 0 END
         WHERE b.id = NEW.batch_id;
        IF ended_now THEN
            PERFORM task_batch_check(NEW.batch_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;
-- Only for rows entering or leaving an end (a dependent released from pending to scheduled,
-- a task claimed or retried: nothing to do), checked before any function is called.
CREATE TRIGGER tasks_status_changed
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN ((NEW.has_dependents OR NEW.batch_id IS NOT NULL)
                       AND OLD.status IS DISTINCT FROM NEW.status
                       AND (NEW.status IN ('finished', 'error', 'cancelled')
                            OR OLD.status IN ('finished', 'error', 'cancelled')))
    EXECUTE FUNCTION tasks_status_changed();

-- A deleted task no longer has dependencies to show.
CREATE FUNCTION task_dependencies_prune() RETURNS INTEGER
    LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM task_dependencies d
         WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = d.task_id)
         RETURNING 1
    )
    SELECT count(*)::int FROM gone
$$;

-- set_program_options(name [, priority, max_running, per_minute]): a program's defaults and
-- limits; an option not given stays as it is, 0 removes a limit. Returns the options now, as
-- JSON.
--   SELECT * FROM set_program_options('import_catalog', max_running => 1, per_minute => 60);
CREATE FUNCTION set_program_options(name TEXT, priority INTEGER DEFAULT NULL,
                                    max_running INTEGER DEFAULT NULL,
                                    per_minute INTEGER DEFAULT NULL)
    RETURNS JSONB
    LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    prog    programs%ROWTYPE;
    now_limited BOOLEAN;
    options     JSONB;
BEGIN
    IF priority IS NOT NULL AND priority NOT BETWEEN -100 AND 100 THEN
        RAISE EXCEPTION 'invalid priority %: use a whole number from -100 to 100 (higher runs first)', priority
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_option", "fields": {"priority": "must be from -100 to 100"}}';
    END IF;
    IF max_running IS NOT NULL AND max_running NOT BETWEEN 0 AND 10000 THEN
        RAISE EXCEPTION 'invalid max_running %: use 1 to 10000, or 0 for no limit', max_running
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_option", "fields": {"max_running": "must be from 1 to 10000 (0: no limit)"}}';
    END IF;
    IF per_minute IS NOT NULL AND per_minute NOT BETWEEN 0 AND 100000 THEN
        RAISE EXCEPTION 'invalid per_minute %: use 1 to 100000, or 0 for no limit', per_minute
            USING ERRCODE = '22023',
                  DETAIL = '{"code": "invalid_option", "fields": {"per_minute": "must be from 1 to 100000 (0: no limit)"}}';
    END IF;
    UPDATE programs p
       SET priority = coalesce(set_program_options.priority, p.priority),
           max_running = CASE WHEN set_program_options.max_running IS NULL THEN p.max_running
                              ELSE nullif(set_program_options.max_running, 0) END,
           per_minute = CASE WHEN set_program_options.per_minute IS NULL THEN p.per_minute
                             ELSE nullif(set_program_options.per_minute, 0) END
     WHERE p.name = set_program_options.name
    RETURNING * INTO prog;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no program named %', coalesce(name, 'NULL')
            USING ERRCODE = 'P0002', HINT = 'SELECT * FROM get_programs() lists the programs.',
                  DETAIL = '{"code": "program_not_found", "fields": {"program": "no such program"}}';
    END IF;
    now_limited := prog.max_running IS NOT NULL OR prog.per_minute IS NOT NULL;
    -- Its waiting tasks move to the queue index that matches (claimed ones count as they are).
    UPDATE tasks t SET limited = now_limited
     WHERE t.program_id = prog.id AND t.status IN ('scheduled', 'pending')
       AND t.limited <> now_limited;
    options := jsonb_build_object('priority', prog.priority, 'max_running', prog.max_running,
                                  'per_minute', prog.per_minute);
    PERFORM audit_record('program.options', 'program ' || prog.name, options);
    RETURN options;
END $$;

-- task_claim: up to max_tasks due tasks for a worker, highest priority first, then queue
-- order. First the limited programs' tasks, each program under its row lock (two nodes cannot
-- both take the last slot; a node finding the lock taken skips the program this time), at
-- most max_running claimed at once and per_minute started in any 60 s. They come first so
-- that a stream of plain work cannot starve them; their limits keep them from crowding the
-- rest out. Then plain tasks from the queue index, starting after the cursor (priority,
-- run_after, id) where this worker's previous claim stopped (so it does not wade through
-- entries of tasks it took, which stay in the index until vacuum): its own level after the
-- cursor, then lower levels. The levels above the cursor's only when the worker asks
-- (look_above: it heard of a task queued above its level; the notification carries the
-- priority), since looking there wades through the entries of every task already claimed
-- at those levels. A NULL cursor starts at the beginning (after a claim found nothing past
-- the cursor, and at each fallback poll). The rows come back plain first, in queue order
-- (the worker's next cursor is its last plain row).
DROP FUNCTION task_claim(TEXT, INTEGER, TIMESTAMPTZ, BIGINT);
CREATE FUNCTION task_claim(worker_name TEXT, max_tasks INTEGER, after_priority INTEGER,
                           after_run_after TIMESTAMPTZ, after_id BIGINT,
                           look_above BOOLEAN DEFAULT false)
    RETURNS TABLE (id BIGINT, attempt INTEGER, function_name TEXT, function_kind TEXT,
                   parameters JSONB, timeout_seconds INTEGER, priority INTEGER,
                   run_after TIMESTAMPTZ, limited BOOLEAN)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    paused_ids     BIGINT[];
    ids            BIGINT[];
    -- For each claimed task of a rate-limited program, that program (its starts are counted).
    rated_programs BIGINT[];
BEGIN
    SELECT coalesce(array_agg(p.id), '{}') INTO paused_ids FROM programs p WHERE p.paused;
    -- One statement for every limited program (a loop of statements per program cost a few
    -- milliseconds per claim, and a limited program's throughput is claims per second).
    WITH lim AS MATERIALIZED (
        SELECT p.id, p.max_running, p.per_minute FROM programs p
         WHERE NOT p.paused AND (p.max_running IS NOT NULL OR p.per_minute IS NOT NULL)
           AND EXISTS (SELECT 1 FROM tasks q
                        WHERE q.status = 'scheduled' AND q.limited AND q.program_id = p.id
                          AND q.run_after <= now())
         ORDER BY p.id
           FOR NO KEY UPDATE OF p SKIP LOCKED
    ), room AS (
        SELECT lim.id, lim.per_minute IS NOT NULL AS rated,
               least(max_tasks,
                     lim.max_running - (SELECT count(*) FROM tasks r
                                         WHERE r.status = 'running' AND r.limited
                                           AND r.program_id = lim.id)::int,
                     lim.per_minute - (SELECT count(*) FROM task_rate_starts s
                                        WHERE s.program_id = lim.id
                                          AND s.started_at > now() - interval '1 minute')::int)
                   AS room
          FROM lim
    )
    SELECT coalesce(array_agg(picked.id), '{}'),
           coalesce(array_agg(room.id) FILTER (WHERE room.rated), '{}')
      INTO ids, rated_programs
      FROM room
     CROSS JOIN LATERAL (
        SELECT q.id FROM tasks q
         WHERE q.status = 'scheduled' AND q.limited AND q.program_id = room.id
           AND q.run_after <= now()
         ORDER BY q.priority DESC, q.run_after, q.id
         LIMIT greatest(room.room, 0)
           FOR UPDATE SKIP LOCKED
     ) picked;
    -- (More than max_tasks in all: the rest stay queued; their locks end with this claim.)
    ids := ids[1:max_tasks];
    IF cardinality(rated_programs) > 0 THEN
        INSERT INTO task_rate_starts (program_id, started_at)
        SELECT program_id, now() FROM unnest(rated_programs[1:max_tasks]) AS r(program_id);
        DELETE FROM task_rate_starts s
         WHERE s.program_id = ANY (rated_programs) AND s.started_at <= now() - interval '1 minute';
    END IF;

    IF after_id IS NULL THEN
        ids := ids || ARRAY(
            SELECT q.id FROM tasks q
             WHERE q.status = 'scheduled' AND NOT q.limited AND q.run_after <= now()
               AND q.program_id <> ALL (paused_ids)
             ORDER BY q.priority DESC, q.run_after, q.id
             LIMIT max_tasks - cardinality(ids)
               FOR UPDATE SKIP LOCKED);
    ELSE
        IF look_above THEN
            ids := ids || ARRAY(
                SELECT q.id FROM tasks q
                 WHERE q.status = 'scheduled' AND NOT q.limited AND q.run_after <= now()
                   AND q.priority > after_priority AND q.program_id <> ALL (paused_ids)
                 ORDER BY q.priority DESC, q.run_after, q.id
                 LIMIT max_tasks - cardinality(ids)
                   FOR UPDATE SKIP LOCKED);
        END IF;
        IF cardinality(ids) < max_tasks THEN
            ids := ids || ARRAY(
                SELECT q.id FROM tasks q
                 WHERE q.status = 'scheduled' AND NOT q.limited AND q.run_after <= now()
                   AND q.priority = after_priority AND (q.run_after, q.id) > (after_run_after, after_id)
                   AND q.program_id <> ALL (paused_ids)
                 ORDER BY q.priority DESC, q.run_after, q.id
                 LIMIT max_tasks - cardinality(ids)
                   FOR UPDATE SKIP LOCKED);
        END IF;
        IF cardinality(ids) < max_tasks THEN
            ids := ids || ARRAY(
                SELECT q.id FROM tasks q
                 WHERE q.status = 'scheduled' AND NOT q.limited AND q.run_after <= now()
                   AND q.priority < after_priority AND q.program_id <> ALL (paused_ids)
                 ORDER BY q.priority DESC, q.run_after, q.id
                 LIMIT max_tasks - cardinality(ids)
                   FOR UPDATE SKIP LOCKED);
        END IF;
    END IF;

    RETURN QUERY
    WITH claimed AS (
        UPDATE tasks t
           SET status = 'running', worker_id = worker_name, start_time = now(),
               heartbeat_at = now(), attempt = t.attempt + 1, waiting = true,
               progress_done = NULL, progress_total = NULL, progress_message = NULL
         WHERE t.id = ANY (ids)
     RETURNING t.id, t.attempt, t.program_id, t.parameters, t.timeout_seconds, t.priority,
               t.run_after, t.limited
    )
    SELECT c.id, c.attempt, f.name, f.kind, c.parameters, c.timeout_seconds, c.priority,
           c.run_after, c.limited
      FROM claimed c
      JOIN programs p ON p.id = c.program_id
      JOIN program_functions f ON f.name = p.function_name
     ORDER BY c.limited, c.priority DESC, c.run_after, c.id;
END $$;

-- task_next_due: when the engine should look at the queue again after finding nothing to
-- claim: the earliest run_after of a plain queued task (a retry waiting out its backoff), or
-- soon, while a limited program has due tasks held back by its limit (a slot frees when one
-- of its tasks ends, possibly on another node). NULL: nothing queued.
CREATE FUNCTION task_next_due(OUT due_at TIMESTAMPTZ, OUT limited_waiting BOOLEAN)
    LANGUAGE sql STABLE AS $$
    SELECT (SELECT min(q.run_after) FROM tasks q
             WHERE q.status = 'scheduled' AND NOT q.limited
               AND q.program_id NOT IN (SELECT p.id FROM programs p WHERE p.paused)),
           EXISTS (SELECT 1 FROM tasks q JOIN programs p ON p.id = q.program_id
                    WHERE q.status = 'scheduled' AND q.limited AND NOT p.paused
                      AND q.run_after <= now())
$$;

-- task_snooze: the program asked to run again later. Not a failure and not an attempt: the
-- attempt number goes back (the worker gave the attempt up itself, as at a shutdown), and
-- the history says so. A task someone asked to cancel is cancelled instead.
CREATE FUNCTION task_snooze(worker_name TEXT, task_id BIGINT, task_attempt INTEGER,
                            seconds DOUBLE PRECISION) RETURNS TEXT
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    new_status TEXT;
BEGIN
    UPDATE tasks SET
        attempts = attempts || jsonb_build_array(jsonb_build_object(
            'attempt', attempt, 'snoozed', seconds, 'started', start_time, 'at', now(),
            'error', format('snoozed for %s s; not counted', round(seconds::numeric, 3)))),
        status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'scheduled' END,
        end_time = CASE WHEN cancel_requested THEN now() END,
        result = CASE WHEN cancel_requested THEN 'Cancelled while snoozing.' ELSE result END,
        attempt = CASE WHEN cancel_requested THEN attempt ELSE attempt - 1 END,
        run_after = now() + make_interval(secs => greatest(seconds, 0)),
        waiting = false, heartbeat_at = NULL
     WHERE id = task_id AND attempt = task_attempt AND worker_id = worker_name
       AND status = 'running'
    RETURNING status INTO new_status;
    RETURN new_status;
END $$;

-- For SQL programs: asks the engine to run this task again after `wait` (it raises an error
-- the engine recognises, so the program's work so far rolls back).
--   PERFORM task_snooze_sql(interval '30 seconds');
CREATE FUNCTION task_snooze_sql(wait INTERVAL) RETURNS VOID
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'snooze for %', wait
        USING ERRCODE = 'BKSNZ',
              DETAIL = json_build_object('snooze_seconds', extract(epoch FROM wait))::text;
END $$;

-- The task a SQL program is running for (the engine sets it for the program's transaction).
CREATE FUNCTION task_current_id() RETURNS BIGINT
    LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('bookstore.task_id', true), '')::bigint
$$;

-- task_upstream([task_id]): the tasks a task waits for, with their results (for programs
-- that use what came before; in a SQL program, without an argument).
--   SELECT * FROM task_upstream();
CREATE FUNCTION task_upstream(task_id BIGINT DEFAULT NULL)
    RETURNS TABLE (id BIGINT, program TEXT, status TEXT, result TEXT, result_table JSONB)
    LANGUAGE sql STABLE AS $$
    SELECT t.id, p.name, t.status, t.result, t.result_table
      FROM task_dependencies d
      JOIN tasks t ON t.id = d.upstream_id
      JOIN programs p ON p.id = t.program_id
     WHERE d.task_id = coalesce(task_upstream.task_id, task_current_id())
     ORDER BY t.id
$$;

-- task_batch([task_id]): the batch whose callback a task is (its counts), for callbacks.
--   SELECT * FROM task_batch();
CREATE FUNCTION task_batch(task_id BIGINT DEFAULT NULL)
    RETURNS TABLE (id BIGINT, size INTEGER, finished INTEGER, failed INTEGER)
    LANGUAGE sql STABLE AS $$
    SELECT b.id, b.size, b.finished, b.failed FROM task_batches b
     WHERE b.callback_task_id = coalesce(task_batch.task_id, task_current_id())
$$;

-- task_run_sql_function: as before, with the task's id set for task_upstream()/task_batch().
DROP FUNCTION task_run_sql_function(TEXT, JSONB);
CREATE FUNCTION task_run_sql_function(function_name TEXT, params JSONB, task_id BIGINT,
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
    PERFORM set_config('bookstore.task_id', task_id::text, true);
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

-- Cancelling applies to pending tasks too (they never start).
CREATE OR REPLACE FUNCTION task_action_applies(action TEXT, status TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE action
                   WHEN 'cancel' THEN status IN ('pending', 'scheduled', 'running')
                   WHEN 'retry' THEN status IN ('error', 'cancelled')
                   WHEN 'delete' THEN status IN ('finished', 'error', 'cancelled')
                   ELSE false
               END
    $$;

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
    IF current IN ('scheduled', 'pending') THEN
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

-- register_program: a new program starts with its function's default limit.
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
    INSERT INTO programs (name, function_name, description, max_running)
    SELECT register_program.name, f.name, f.description, f.default_max_running
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

-- get_programs(): as before, and each program's priority and limits (new last columns).
DROP FUNCTION get_programs();
CREATE FUNCTION get_programs()
    RETURNS TABLE (id BIGINT, name TEXT, function_name TEXT, description TEXT,
                   parameters JSONB, enabled BOOLEAN, schedule TEXT, next_run_at TIMESTAMPTZ,
                   last_task_id BIGINT, last_status TEXT, last_run_at TIMESTAMPTZ,
                   paused BOOLEAN, priority INTEGER, max_running INTEGER, per_minute INTEGER)
    LANGUAGE sql STABLE AS $$
    SELECT p.id, p.name, p.function_name, p.description, f.parameters, p.enabled, p.schedule,
           p.next_run_at, last.id, last.status, last.created_at, p.paused, p.priority,
           p.max_running, p.per_minute
      FROM programs p
      LEFT JOIN program_functions f ON f.name = p.function_name
      LEFT JOIN LATERAL (
          SELECT t.id, t.status, t.created_at FROM tasks t
           WHERE t.program_id = p.id ORDER BY t.id DESC LIMIT 1
      ) last ON true
     ORDER BY p.name
$$;

-- retry_task(id): as before (migration audit_and_console), and a task queued after others
-- waits for them again: pending until those not finished yet have (it was cancelled because
-- one failed; retrying that one lets this one run after it).
CREATE OR REPLACE FUNCTION retry_task(task_id BIGINT) RETURNS TEXT
    LANGUAGE plpgsql AS $$
DECLARE
    current TEXT;
    left_   INTEGER;
BEGIN
    SELECT t.status INTO current FROM tasks t WHERE t.id = retry_task.task_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no task with id %', coalesce(task_id::text, 'NULL')
            USING ERRCODE = 'P0002', DETAIL = '{"code": "task_not_found", "fields": {}}';
    END IF;
    IF task_action_applies('retry', current) THEN
        -- Its upstream tasks locked (in id order, as run_program does), so none ends unseen.
        PERFORM 1 FROM tasks u
         WHERE u.id IN (SELECT d.upstream_id FROM task_dependencies d
                         WHERE d.task_id = retry_task.task_id)
         ORDER BY u.id FOR NO KEY UPDATE;
        SELECT count(*) INTO left_ FROM task_dependencies d JOIN tasks u ON u.id = d.upstream_id
         WHERE d.task_id = retry_task.task_id AND u.status <> 'finished';
        UPDATE tasks t
           SET status = CASE WHEN left_ > 0 THEN 'pending' ELSE 'scheduled' END,
               upstream_left = left_, run_after = now(), end_time = NULL, result = NULL,
               result_table = NULL, cancel_requested = false, worker_id = NULL,
               max_attempts = t.attempt + 1
         WHERE t.id = retry_task.task_id;
        PERFORM audit_record('task.retried', 'task ' || retry_task.task_id,
                             jsonb_build_object('was', current));
        RETURN CASE WHEN left_ > 0 THEN 'pending' ELSE 'scheduled' END;
    END IF;
    RETURN current;
END $$;

-- The queue's notification: as before, and its payload is the task's priority, so that a node
-- whose claims have moved past that level looks again from the start, and one whose local
-- queue is full of lower ones claims an urgent task (above 0) at once rather than after the
-- queue drains. (Equal payloads of one transaction still fold into one notice.)
CREATE OR REPLACE FUNCTION tasks_notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bookstore_tasks', NEW.priority::text);
    RETURN NULL;
END $$;
