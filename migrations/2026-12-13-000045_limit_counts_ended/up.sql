-- Two changes to what a task's end costs the engine, measured with `cargo bench --bench tasks`
-- (BENCH_V3_ONLY) and pg_stat_statements on one node:
--
-- 1. A limited program's slot frees when its attempt ends, not when its outcome is written.
--    The claim is told which attempts of this node ended and are not recorded yet (ended_ids
--    and ended_attempts, pairwise) and does not count them as running. The limit is on
--    executions: an attempt whose function has returned runs nothing, whatever its row says
--    until the writer records it. So the loop claims while the writer records, on its own
--    connection, instead of recording and claiming one after the other in one statement
--    (task_finish_then_claim, dropped: the engine no longer calls it). Another node still
--    counts those rows as running until they are recorded: it errs on the side of fewer. An
--    attempt is matched by id and attempt number: a task rescued from this node and claimed
--    again is a new attempt, and runs. 8 programs x max_running 4 on one node: 14.4-14.8k
--    tasks/s -> 17.3-19.6k (1.44 ms a claim-and-record round trip, 0.94 ms a claim).
--
-- 2. A task released by the end of its last upstream is announced once per statement (one
--    notice per priority), not by a row trigger per task: for a chain's release the trigger
--    was 4 of the 21 ms an UPDATE of 1000 dependents took. The row trigger still announces
--    every other way a task comes to be queued (INSERT, a retry, a rescue, a snooze).
--    Chains of 10: 22.6-24.8k tasks/s -> 25.1-30.8k.

DROP FUNCTION task_finish_then_claim(text, bigint[], integer[], text[], jsonb[],
                                    timestamp with time zone[], timestamp with time zone[],
                                    integer, integer, timestamp with time zone, bigint, boolean);
DROP FUNCTION task_claim(text, integer, integer, timestamp with time zone, bigint, boolean);
DROP FUNCTION task_claim_limited(integer);

-- As in engine_plans_once, and the ended attempts of the claiming node are not counted.
CREATE FUNCTION task_claim_limited(max_tasks integer, ended_ids bigint[], ended_attempts integer[])
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
                                           AND r.program_id = lim.id
                                           AND r.attempt IS DISTINCT FROM
                                               ended_attempts[array_position(ended_ids, r.id)])::int,
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

CREATE FUNCTION task_claim(worker_name text, max_tasks integer, after_priority integer, after_run_after timestamp with time zone, after_id bigint, look_above boolean DEFAULT false, ended_ids bigint[] DEFAULT '{}', ended_attempts integer[] DEFAULT '{}')
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
    ids := task_claim_limited(max_tasks, ended_ids, ended_attempts);

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

-- The row trigger no longer announces a release (task_finish below does, once).
DROP TRIGGER tasks_notify_queued ON tasks;
CREATE TRIGGER tasks_notify_queued AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.status = 'scheduled') EXECUTE FUNCTION tasks_notify_queued();
CREATE TRIGGER tasks_notify_requeued AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status = 'scheduled' AND OLD.status <> 'pending')
    EXECUTE FUNCTION tasks_notify_queued();

-- As in engine_plans_once, and the released dependents announced once per priority.
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
    notified      BIGINT;
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
        ), released AS (
            UPDATE tasks_live t
           SET upstream_left = t.upstream_left - w.finished,
               status = CASE WHEN t.upstream_left = w.finished THEN 'scheduled' ELSE 'pending' END,
               run_after = CASE WHEN t.upstream_left = w.finished THEN now() ELSE t.run_after END
          FROM waiting w
         WHERE t.id = w.task_id AND t.status = 'pending'
            RETURNING t.status, t.priority
        )
        -- The released ones announced (tasks_notify_requeued leaves them to this).
        SELECT count(pg_notify('bookstore_tasks', r.priority::text))
          INTO notified
          FROM (SELECT DISTINCT r.priority FROM released r WHERE r.status = 'scheduled') r;
    END IF;
    RETURN QUERY SELECT d.id, d.attempt FROM unnest(done_ids, done_attempts) AS d(id, attempt);
END $function$;
