-- task_claim counts a limited program's running tasks in a statement after the one that locks
-- the program (see the comment inside), and it and task_finish_then_claim also return the
-- claimed task's program name (what the metrics label a run with; the function name is not
-- the program's: two programs may share a function). Everything else is as before.
DROP FUNCTION task_finish_then_claim(TEXT, BIGINT[], INTEGER[], TEXT[], JSONB[], TIMESTAMPTZ[],
                                    TIMESTAMPTZ[], INTEGER, INTEGER, TIMESTAMPTZ, BIGINT, BOOLEAN);
DROP FUNCTION task_claim(TEXT, INTEGER, INTEGER, TIMESTAMPTZ, BIGINT, BOOLEAN);
CREATE FUNCTION task_claim(worker_name TEXT, max_tasks INTEGER, after_priority INTEGER,
                           after_run_after TIMESTAMPTZ, after_id BIGINT,
                           look_above BOOLEAN DEFAULT false)
    RETURNS TABLE (id BIGINT, attempt INTEGER, function_name TEXT, function_kind TEXT,
                   parameters JSONB, timeout_seconds INTEGER, priority INTEGER,
                   run_after TIMESTAMPTZ, limited BOOLEAN, program_name TEXT)
    LANGUAGE plpgsql AS $$
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
         WHERE t.id = ANY (ids)
     RETURNING t.id, t.attempt, t.program_id, t.parameters, t.timeout_seconds, t.priority,
               t.run_after, t.limited
    )
    SELECT c.id, c.attempt, f.name, f.kind, c.parameters, c.timeout_seconds, c.priority,
           c.run_after, c.limited, p.name
      FROM claimed c
      JOIN programs p ON p.id = c.program_id
      JOIN program_functions f ON f.name = p.function_name
     ORDER BY c.limited, c.priority DESC, c.run_after, c.id;
END $$;

CREATE FUNCTION task_finish_then_claim(worker_name TEXT, task_ids BIGINT[], task_attempts INTEGER[],
                                       results TEXT[], result_tables JSONB[],
                                       started_at TIMESTAMPTZ[], ended_at TIMESTAMPTZ[],
                                       max_tasks INTEGER, after_priority INTEGER,
                                       after_run_after TIMESTAMPTZ, after_id BIGINT,
                                       look_above BOOLEAN)
    RETURNS TABLE (recorded BOOLEAN, id BIGINT, attempt INTEGER, function_name TEXT,
                   function_kind TEXT, parameters JSONB, timeout_seconds INTEGER,
                   priority INTEGER, run_after TIMESTAMPTZ, limited BOOLEAN,
                   program_name TEXT)
    LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    SELECT true, f.id, f.attempt, NULL::text, NULL::text, NULL::jsonb, NULL::int, NULL::int,
           NULL::timestamptz, NULL::boolean, NULL::text
      FROM task_finish(worker_name, task_ids, task_attempts, results, result_tables,
                       started_at, ended_at) f;
    RETURN QUERY
    SELECT false, c.id, c.attempt, c.function_name, c.function_kind, c.parameters,
           c.timeout_seconds, c.priority, c.run_after, c.limited, c.program_name
      FROM task_claim(worker_name, max_tasks, after_priority, after_run_after, after_id,
                      look_above) c;
END $$;
