-- Ended tasks live apart from the queue. `tasks` is partitioned on `archived`: `tasks_live`
-- holds what the engine works on (queued, running, and tasks that ended moments ago) and
-- `tasks_archive` what is kept for the dashboard's history. Every claim and finish is an
-- update whose new row version enters each index of its table; in one table those indexes
-- grow with every task ever kept (ten million: 900 MB of indexes, and an autovacuum that
-- waits for two million dead rows and then scans them all). With the archive apart, the
-- engine's table and indexes stay the size of the queue, whatever is kept.
--
-- The engine never moves a row between the two: a task ends in `tasks_live`, and
-- `task_archive` (called by the maintenance of one worker at a time) moves tasks that ended
-- a little while ago, in batches. Readers see one table. A staff action on an ended task
-- that meets the archive's move at the same moment gets a serialization failure, which
-- the functions below answer by looking again.

-- Nothing may write to the old table between the copy and its drop (other nodes of an
-- older version keep running during a rolling deploy): their writes would be lost.
LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE;

CREATE TABLE tasks_partitioned (
    LIKE tasks INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING STORAGE,
    archived boolean NOT NULL DEFAULT false,
    -- Only ended tasks are archived, and only once their unique key (if any) is let go: the
    -- unique index below holds keys among the live rows alone.
    CONSTRAINT tasks_archived_check CHECK (
        NOT archived OR (status IN ('finished', 'error', 'cancelled')
                         AND (unique_key IS NULL OR unique_released)))
) PARTITION BY LIST (archived);
-- The live rows are updated (claims, finishes): room on each page keeps those updates on
-- the page. Archived rows are written once.
-- Each task leaves three dead row versions here (claimed, finished, moved): at ten thousand
-- tasks a second, autovacuum's default pace (it sleeps between pages) never catches up.
CREATE TABLE tasks_live PARTITION OF tasks_partitioned FOR VALUES IN (false)
    WITH (fillfactor = 70, autovacuum_vacuum_cost_delay = 0,
          autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
CREATE TABLE tasks_archive PARTITION OF tasks_partitioned FOR VALUES IN (true);
-- Said again on the partition alone, in the simple form the planner can use: a statement
-- that asks for queued or running tasks then never looks into the archive (constraint
-- exclusion), so the engine's statements read tasks_live only.
ALTER TABLE tasks_archive ADD CONSTRAINT tasks_archive_ended
    CHECK (status IN ('finished', 'error', 'cancelled'));

INSERT INTO tasks_partitioned OVERRIDING SYSTEM VALUE
SELECT t.*, t.status IN ('finished', 'error', 'cancelled')
            AND (t.unique_key IS NULL OR t.unique_released)
  FROM tasks t;
SELECT setval(pg_get_serial_sequence('tasks_partitioned', 'id'),
              coalesce((SELECT max(id) FROM tasks), 0) + 1, false);

DROP TABLE tasks;
ALTER TABLE tasks_partitioned RENAME TO tasks;
ALTER SEQUENCE tasks_partitioned_id_seq RENAME TO tasks_id_seq;

-- A partitioned table's unique keys must name its partition column: an id is unique because
-- the identity hands out each once and a move keeps it (no statement writes ids).
ALTER TABLE tasks ADD CONSTRAINT tasks_pkey PRIMARY KEY (id, archived);
ALTER TABLE tasks ADD CONSTRAINT tasks_program_id_fkey
    FOREIGN KEY (program_id) REFERENCES programs (id) ON DELETE RESTRICT;

CREATE INDEX tasks_running_worker_idx ON tasks (worker_id) WHERE status = 'running';
CREATE INDEX tasks_program_id_idx ON tasks (program_id, id DESC);
CREATE INDEX tasks_ended_badly_idx ON tasks (id DESC) WHERE status IN ('error', 'cancelled');
CREATE INDEX tasks_created_at_brin ON tasks USING brin (created_at);
CREATE INDEX tasks_queue_idx ON tasks (priority DESC, run_after, id)
    WHERE status = 'scheduled' AND NOT limited;
CREATE INDEX tasks_limited_queue_idx ON tasks (program_id, priority DESC, run_after, id)
    WHERE status = 'scheduled' AND limited;
CREATE INDEX tasks_limited_running_idx ON tasks (program_id) WHERE status = 'running' AND limited;
CREATE UNIQUE INDEX tasks_unique_key_idx ON tasks (program_id, unique_key, archived)
    WHERE unique_key IS NOT NULL AND NOT unique_released;
CREATE INDEX tasks_batch_idx ON tasks (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX tasks_pending_idx ON tasks (id DESC) WHERE status = 'pending';
CREATE INDEX tasks_failed_end_time_idx ON tasks (end_time DESC) WHERE status = 'error';
-- What the archive moves next: live tasks that ended, oldest end first; those still holding
-- a unique key apart (they wait for their unique_for, which can be days: the archive's
-- frequent pass must not walk past them each time).
CREATE INDEX tasks_to_archive_idx ON tasks (end_time)
    WHERE NOT archived AND status IN ('finished', 'error', 'cancelled')
      AND (unique_key IS NULL OR unique_released);
CREATE INDEX tasks_holding_keys_idx ON tasks (end_time)
    WHERE NOT archived AND status IN ('finished', 'error', 'cancelled')
      AND unique_key IS NOT NULL AND NOT unique_released;

CREATE TRIGGER tasks_notify_queued AFTER INSERT OR UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status = 'scheduled') EXECUTE FUNCTION tasks_notify_queued();
-- Status changes happen in tasks_live (the archive moves ended tasks only, and retry_task
-- brings one back before it changes its status), so this UPDATE trigger sees every one.
CREATE TRIGGER tasks_status_changed AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND (
        (NEW.has_dependents AND NEW.status IN ('error', 'cancelled')
         AND OLD.status NOT IN ('finished', 'error', 'cancelled'))
        OR (NEW.batch_id IS NOT NULL AND (NEW.status IN ('finished', 'error', 'cancelled')
                                          OR OLD.status IN ('finished', 'error', 'cancelled')))))
    EXECUTE FUNCTION tasks_status_changed();

-- Moves up to `max_rows` tasks that ended more than `settle` ago into the archive. With
-- `holding_keys`, it looks at the tasks that still hold a unique key instead, and moves
-- those whose unique_for is over, letting the key go (what run_program would do on the next
-- call with that key). One caller at a time: two would try to move the same rows.
CREATE FUNCTION task_archive(max_rows integer, settle interval DEFAULT interval '5 seconds',
                             holding_keys boolean DEFAULT false)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    moved INTEGER;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('task_archive')) THEN
        RETURN 0;
    END IF;
    IF NOT holding_keys THEN
        WITH due AS (
            SELECT t.id FROM tasks t
             WHERE NOT t.archived AND t.status IN ('finished', 'error', 'cancelled')
               AND (t.unique_key IS NULL OR t.unique_released)
               AND t.end_time < now() - settle
             ORDER BY t.end_time
             LIMIT max_rows
               FOR UPDATE SKIP LOCKED
        )
        UPDATE tasks t SET archived = true
          FROM due
         WHERE t.id = due.id AND NOT t.archived;
    ELSE
        WITH due AS (
            SELECT t.id FROM tasks t
             WHERE NOT t.archived AND t.status IN ('finished', 'error', 'cancelled')
               AND t.unique_key IS NOT NULL AND NOT t.unique_released
               AND t.end_time < now() - settle
               AND t.end_time + coalesce(t.unique_for, interval '0') <= now()
             ORDER BY t.end_time
             LIMIT max_rows
               FOR UPDATE SKIP LOCKED
        )
        UPDATE tasks t SET archived = true, unique_released = true
          FROM due
         WHERE t.id = due.id AND NOT t.archived;
    END IF;
    GET DIAGNOSTICS moved = ROW_COUNT;
    RETURN moved;
END $$;


-- The staff actions on one task, as before, with two changes: a serialization failure (the
-- archive moved the task, or one it waits for, at that moment) is answered by trying again on
-- a fresh snapshot, and a retried task comes back out of the archive before its status
-- changes (so the status trigger sees the change, as for any live task).
CREATE OR REPLACE FUNCTION cancel_task(task_id bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    current TEXT;
BEGIN
    FOR try IN 1..20 LOOP
        BEGIN
            SELECT t.status INTO current FROM tasks t WHERE t.id = cancel_task.task_id FOR UPDATE;
            EXIT;
        EXCEPTION WHEN serialization_failure THEN
            IF try = 20 THEN
                RAISE;
            END IF;
        END;
    END LOOP;
    IF current IS NULL THEN
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

CREATE OR REPLACE FUNCTION retry_task(task_id bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    current TEXT;
    left_   INTEGER;
BEGIN
    FOR try IN 1..20 LOOP
        BEGIN
            SELECT t.status INTO current FROM tasks t WHERE t.id = retry_task.task_id FOR UPDATE;
            IF current IS NOT NULL AND task_action_applies('retry', current) THEN
                -- Its upstream tasks locked (in id order, as run_program does), so none ends
                -- unseen.
                PERFORM 1 FROM tasks u
                 WHERE u.id IN (SELECT d.upstream_id FROM task_dependencies d
                                 WHERE d.task_id = retry_task.task_id)
                 ORDER BY u.id FOR NO KEY UPDATE;
            END IF;
            EXIT;
        EXCEPTION WHEN serialization_failure THEN
            IF try = 20 THEN
                RAISE;
            END IF;
        END;
    END LOOP;
    IF current IS NULL THEN
        RAISE EXCEPTION 'no task with id %', coalesce(task_id::text, 'NULL')
            USING ERRCODE = 'P0002', DETAIL = '{"code": "task_not_found", "fields": {}}';
    END IF;
    IF task_action_applies('retry', current) THEN
        UPDATE tasks t SET archived = false WHERE t.id = retry_task.task_id AND t.archived;
        -- A task that held a unique key holds it again, as before it was archived, unless
        -- another task took the key since.
        BEGIN
            UPDATE tasks t SET unique_released = false
             WHERE t.id = retry_task.task_id AND t.unique_key IS NOT NULL AND t.unique_released;
        EXCEPTION WHEN unique_violation THEN
            NULL;
        END;
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

CREATE OR REPLACE FUNCTION delete_task(task_id bigint) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    program TEXT;
BEGIN
    FOR try IN 1..20 LOOP
        BEGIN
            DELETE FROM tasks t USING programs p
             WHERE t.id = delete_task.task_id AND p.id = t.program_id
               AND task_action_applies('delete', t.status)
            RETURNING p.name INTO program;
            EXIT;
        EXCEPTION WHEN serialization_failure THEN
            IF try = 20 THEN
                RAISE;
            END IF;
        END;
    END LOOP;
    IF program IS NULL THEN
        RETURN false;
    END IF;
    PERFORM audit_record('task.deleted', 'task ' || delete_task.task_id,
                         jsonb_build_object('program', program));
    RETURN true;
END $$;


-- run_program: the upstream lock and the unique key holder meet the archives moves too.
CREATE OR REPLACE FUNCTION task_enqueue(program_name text, params jsonb, want_priority integer DEFAULT NULL::integer, want_unique_key text DEFAULT NULL::text, want_unique_for interval DEFAULT NULL::interval, want_after bigint[] DEFAULT NULL::bigint[], batch bigint DEFAULT NULL::bigint, OUT task_id bigint, OUT existed boolean)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
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
        -- In id order, so two callers waiting for the same tasks cannot deadlock. An ended
        -- upstream the archive moves meanwhile raises a serialization failure: look again
        -- (each statement here reads a fresh snapshot, which has it in the archive).
        FOR try IN 1..20 LOOP
            BEGIN
                PERFORM 1 FROM tasks t WHERE t.id = ANY (want_after) ORDER BY t.id FOR NO KEY UPDATE;
                WITH marked AS (
                    UPDATE tasks t SET has_dependents = true
                     WHERE t.id = ANY (want_after)
                 RETURNING t.id, t.status
                )
                SELECT count(*) FILTER (WHERE m.status NOT IN ('finished', 'error', 'cancelled')),
                       min(m.id) FILTER (WHERE m.status IN ('error', 'cancelled'))
                  INTO left_, failed_upstream FROM marked m;
                EXIT;
            EXCEPTION WHEN serialization_failure THEN
                IF try = 20 THEN
                    RAISE;
                END IF;
            END;
        END LOOP;
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
            ON CONFLICT (program_id, unique_key, archived) WHERE unique_key IS NOT NULL AND NOT unique_released
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
        -- (The archive lets a key go when its time is up, and moves the task: a holder moved
        -- meanwhile raises a serialization failure, and the key is free, so: insert again.)
        BEGIN
            SELECT t.id, t.status, t.end_time, t.unique_for INTO holder
              FROM tasks t
             WHERE t.program_id = prog.id AND t.unique_key = want_unique_key
               AND NOT t.unique_released
               FOR UPDATE;
        EXCEPTION WHEN serialization_failure THEN
            CONTINUE;
        END;
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
END $function$

;

-- task_claim as in limit_lock_then_count, its update told the claimed tasks are live (so it
-- never looks into the archive's primary key for them).
CREATE OR REPLACE FUNCTION task_claim(worker_name text, max_tasks integer, after_priority integer, after_run_after timestamp with time zone, after_id bigint, look_above boolean DEFAULT false)
 RETURNS TABLE(id bigint, attempt integer, function_name text, function_kind text, parameters jsonb, timeout_seconds integer, priority integer, run_after timestamp with time zone, limited boolean, program_name text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
    paused_ids     BIGINT[];
    locked_ids     BIGINT[];
    ids            BIGINT[];
    -- For each claimed task of a rate-limited program, that program (its starts are counted).
    rated_programs BIGINT[];
BEGIN
    SELECT coalesce(array_agg(p.id), '{}') INTO paused_ids FROM programs p WHERE p.paused;
    -- First the limited programs, locked: one claim at a time counts a program's slots. The
    -- lock is its own statement so that the count below runs on a snapshot taken after it:
    -- counted in the statement that took the lock, the snapshot would predate a claim that
    -- committed while this one waited to lock, miss the tasks it started, and hand out their
    -- slots again. All of them, not only those with due tasks: asking that here walked each
    -- program's queue index once more per claim (the picks below ask it anyway), and cost a
    -- third of a limited claim (measured: 8 programs x max_running 4, 5.4-7.1k/s with the
    -- question, 8.1k/s without).
    SELECT coalesce(array_agg(p.id), '{}') INTO locked_ids
      FROM (SELECT p.id FROM programs p
             WHERE NOT p.paused AND (p.max_running IS NOT NULL OR p.per_minute IS NOT NULL)
             ORDER BY p.id
               FOR NO KEY UPDATE OF p SKIP LOCKED) p;
    -- One statement for every limited program (a loop of statements per program cost a few
    -- milliseconds per claim, and a limited program's throughput is claims per second).
    WITH lim AS MATERIALIZED (
        SELECT p.id, p.max_running, p.per_minute FROM programs p
         WHERE p.id = ANY (locked_ids)
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
         WHERE t.id = ANY (ids) AND NOT t.archived
     RETURNING t.id, t.attempt, t.program_id, t.parameters, t.timeout_seconds, t.priority,
               t.run_after, t.limited
    )
    SELECT c.id, c.attempt, f.name, f.kind, c.parameters, c.timeout_seconds, c.priority,
           c.run_after, c.limited, p.name
      FROM claimed c
      JOIN programs p ON p.id = c.program_id
      JOIN program_functions f ON f.name = p.function_name
     ORDER BY c.limited, c.priority DESC, c.run_after, c.id;
END $function$

;
