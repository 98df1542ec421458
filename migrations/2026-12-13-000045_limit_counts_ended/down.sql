-- task_claim, task_claim_limited and task_finish as engine_plans_once left them,
-- task_finish_then_claim as limit_lock_then_count did, and one row trigger announcing every
-- task that comes to be queued.
DROP TRIGGER tasks_notify_requeued ON tasks;
DROP TRIGGER tasks_notify_queued ON tasks;
CREATE TRIGGER tasks_notify_queued AFTER INSERT OR UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status = 'scheduled') EXECUTE FUNCTION tasks_notify_queued();

DROP FUNCTION task_claim(text, integer, integer, timestamp with time zone, bigint, boolean,
                         bigint[], integer[]);
DROP FUNCTION task_claim_limited(integer, bigint[], integer[]);

CREATE FUNCTION task_claim_limited(max_tasks integer)
 RETURNS bigint[]
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    locked_ids     BIGINT[];
    ids            BIGINT[];
    -- For each claimed task of a rate-limited program, that program (its starts are counted).
    rated_programs BIGINT[];
BEGIN
    -- The limited programs, locked: one claim at a time counts a program's slots. The lock is
    -- its own statement so that the count below runs on a snapshot taken after it: counted in
    -- the statement that took the lock, the snapshot would predate a claim that committed
    -- while this one waited to lock, miss the tasks it started, and hand out their slots
    -- again. All of them, not only those with due tasks: asking that here walked each
    -- program's queue index once more per claim (the picks below ask it anyway), and cost a
    -- third of a limited claim.
    SELECT coalesce(array_agg(p.id), '{}') INTO locked_ids
      FROM (SELECT p.id FROM programs p
             WHERE NOT p.paused AND (p.max_running IS NOT NULL OR p.per_minute IS NOT NULL)
             ORDER BY p.id
               FOR NO KEY UPDATE OF p SKIP LOCKED) p;
    IF cardinality(locked_ids) = 0 THEN
        RETURN '{}';
    END IF;
    -- One statement for every limited program (a loop of statements per program cost a few
    -- milliseconds per claim, and a limited program's throughput is claims per second).
    WITH lim AS MATERIALIZED (
        SELECT p.id, p.max_running, p.per_minute FROM programs p
         WHERE p.id = ANY (locked_ids)
    ), room AS (
        SELECT lim.id, lim.per_minute IS NOT NULL AS rated,
               least(max_tasks,
                     lim.max_running - (SELECT count(*) FROM tasks_live r
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
        SELECT q.id FROM tasks_live q
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
    RETURN ids;
END $function$;

CREATE FUNCTION task_claim(worker_name text, max_tasks integer, after_priority integer, after_run_after timestamp with time zone, after_id bigint, look_above boolean DEFAULT false)
 RETURNS TABLE(id bigint, attempt integer, function_name text, function_kind text, parameters jsonb, timeout_seconds integer, priority integer, run_after timestamp with time zone, limited boolean, program_name text)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
    paused_ids     BIGINT[];
    ids            BIGINT[];
BEGIN
    SELECT coalesce(array_agg(p.id), '{}') INTO paused_ids FROM programs p WHERE p.paused;
    -- First the limited programs' tasks, then the plain queue's from the cursor on.
    ids := task_claim_limited(max_tasks);

    IF after_id IS NULL THEN
        ids := ids || ARRAY(
            SELECT q.id FROM tasks_live q
             WHERE q.status = 'scheduled' AND NOT q.limited AND q.run_after <= now()
               AND q.program_id <> ALL (paused_ids)
             ORDER BY q.priority DESC, q.run_after, q.id
             LIMIT max_tasks - cardinality(ids)
               FOR UPDATE SKIP LOCKED);
    ELSE
        IF look_above THEN
            ids := ids || ARRAY(
                SELECT q.id FROM tasks_live q
                 WHERE q.status = 'scheduled' AND NOT q.limited AND q.run_after <= now()
                   AND q.priority > after_priority AND q.program_id <> ALL (paused_ids)
                 ORDER BY q.priority DESC, q.run_after, q.id
                 LIMIT max_tasks - cardinality(ids)
                   FOR UPDATE SKIP LOCKED);
        END IF;
        IF cardinality(ids) < max_tasks THEN
            ids := ids || ARRAY(
                SELECT q.id FROM tasks_live q
                 WHERE q.status = 'scheduled' AND NOT q.limited AND q.run_after <= now()
                   AND q.priority = after_priority AND (q.run_after, q.id) > (after_run_after, after_id)
                   AND q.program_id <> ALL (paused_ids)
                 ORDER BY q.priority DESC, q.run_after, q.id
                 LIMIT max_tasks - cardinality(ids)
                   FOR UPDATE SKIP LOCKED);
        END IF;
        IF cardinality(ids) < max_tasks THEN
            ids := ids || ARRAY(
                SELECT q.id FROM tasks_live q
                 WHERE q.status = 'scheduled' AND NOT q.limited AND q.run_after <= now()
                   AND q.priority < after_priority AND q.program_id <> ALL (paused_ids)
                 ORDER BY q.priority DESC, q.run_after, q.id
                 LIMIT max_tasks - cardinality(ids)
                   FOR UPDATE SKIP LOCKED);
        END IF;
    END IF;

    RETURN QUERY
    WITH claimed AS (
        UPDATE tasks_live t
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
END $function$;

CREATE OR REPLACE FUNCTION task_finish(worker_name text, task_ids bigint[], task_attempts integer[], results text[], result_tables jsonb[], started_at timestamp with time zone[], ended_at timestamp with time zone[])
 RETURNS TABLE(id bigint, attempt integer)
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
#variable_conflict use_column
DECLARE
    done_ids      BIGINT[];
    done_attempts INTEGER[];
    upstreams     BIGINT[];
BEGIN
    WITH done AS (
        UPDATE tasks_live t
           SET status = 'finished', start_time = v.start_at, end_time = v.end_at,
               result = v.result, result_table = v.result_table,
               progress_done = coalesce(t.progress_total, t.progress_done)
          FROM unnest(task_ids, task_attempts, results, result_tables, started_at, ended_at)
               AS v(id, attempt, result, result_table, start_at, end_at)
         WHERE t.id = v.id AND t.attempt = v.attempt AND t.worker_id = worker_name
           AND t.status = 'running'
     RETURNING t.id, t.attempt, t.has_dependents
    )
    SELECT array_agg(done.id), array_agg(done.attempt),
           array_agg(done.id) FILTER (WHERE done.has_dependents)
      INTO done_ids, done_attempts, upstreams
      FROM done;
    IF cardinality(upstreams) > 0 THEN
        -- How many of each waiting task's upstreams this batch finished. (A dependent is
        -- 'pending', never one of the rows just finished.) Two nodes finishing two upstreams
        -- of one task at once: the second UPDATE waits for the first and re-evaluates against
        -- its result, so upstream_left counts both.
        WITH waiting AS (
            SELECT d.task_id, count(*)::int AS finished
              FROM task_dependencies d
             WHERE d.upstream_id = ANY (upstreams)
             GROUP BY d.task_id
        )
        UPDATE tasks_live t
           SET upstream_left = t.upstream_left - w.finished,
               status = CASE WHEN t.upstream_left = w.finished THEN 'scheduled' ELSE 'pending' END,
               run_after = CASE WHEN t.upstream_left = w.finished THEN now() ELSE t.run_after END
          FROM waiting w
         WHERE t.id = w.task_id AND t.status = 'pending';
    END IF;
    RETURN QUERY SELECT d.id, d.attempt FROM unnest(done_ids, done_attempts) AS d(id, attempt);
END $function$;

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
