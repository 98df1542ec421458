-- A node that alone runs a limited program may hold more of its tasks than its max_running,
-- and starts at most max_running of them at once (the executor's local queue sets the rest
-- aside until one of the program's running tasks ends). A program's rate was one claim round
-- trip per max_running tasks: 8 programs x max_running 4 on one node ran 17-19k tasks/s,
-- against 50-58k for plain ones; holding up to a local queue's worth of them (hold_max, the
-- node's local queue capacity), 35k.
--
-- The cluster-wide limit still holds: a node holds more than max_running only while no other
-- node holds any of the program's tasks, and another node's claim counts every held task as
-- running (so it takes none while this node holds max_running or more), so the starts in the
-- whole cluster never exceed it. A program with a per-minute limit is never held ahead (its
-- starts are counted when claimed). The claim's rows now say each limited task's max_running.
--
-- What a held task's row says: 'running' (claimed by that node, waiting in its local queue,
-- as the plain engine's claimed tasks always have); its start_time is recorded when it
-- really starts.

DROP FUNCTION task_claim(text, integer, integer, timestamp with time zone, bigint, boolean,
                         bigint[], integer[]);
DROP FUNCTION task_claim_limited(integer, bigint[], integer[]);

-- As in limit_counts_ended, and a node no other one shares a program with may hold hold_max.
CREATE FUNCTION task_claim_limited(max_tasks integer, ended_ids bigint[], ended_attempts integer[],
                                   worker_name text, hold_max integer)
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
    ), held AS (
        -- Each program's running tasks: all of them less this node's ended attempts, and
        -- how many other nodes hold.
        SELECT lim.id, c.running, c.elsewhere
          FROM lim
         CROSS JOIN LATERAL (
            SELECT count(*) FILTER (WHERE r.attempt IS DISTINCT FROM
                                    ended_attempts[array_position(ended_ids, r.id)])::int AS running,
                   count(*) FILTER (WHERE r.worker_id <> worker_name)::int AS elsewhere
              FROM tasks_live r
             WHERE r.status = 'running' AND r.limited AND r.program_id = lim.id
         ) c
    ), room AS (
        SELECT lim.id, lim.per_minute IS NOT NULL AS rated,
               least(max_tasks,
                     -- No other node runs it (and it has no per-minute limit, whose starts
                     -- are counted here): this node may hold its share of hold_max of its
                     -- tasks and starts at most max_running of them at once (its local
                     -- queue). Another node takes none while this one holds max_running.
                     CASE WHEN lim.per_minute IS NULL AND held.elsewhere = 0
                          THEN greatest(lim.max_running, hold_max / cardinality(locked_ids))
                          ELSE lim.max_running END - held.running,
                     lim.per_minute - (SELECT count(*) FROM task_rate_starts s
                                        WHERE s.program_id = lim.id
                                          AND s.started_at > now() - interval '1 minute')::int)
                   AS room
          FROM lim JOIN held ON held.id = lim.id
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

-- As in limit_counts_ended, passing hold_max on; the rows say each limited task's max_running.
CREATE FUNCTION task_claim(worker_name text, max_tasks integer, after_priority integer, after_run_after timestamp with time zone, after_id bigint, look_above boolean DEFAULT false, ended_ids bigint[] DEFAULT '{}', ended_attempts integer[] DEFAULT '{}', hold_max integer DEFAULT 0)
 RETURNS TABLE(id bigint, attempt integer, function_name text, function_kind text, parameters jsonb, timeout_seconds integer, priority integer, run_after timestamp with time zone, limited boolean, program_name text, max_running integer)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
DECLARE
    paused_ids     BIGINT[];
    ids            BIGINT[];
BEGIN
    SELECT coalesce(array_agg(p.id), '{}') INTO paused_ids FROM programs p WHERE p.paused;
    -- First the limited programs' tasks, then the plain queue's from the cursor on.
    ids := task_claim_limited(max_tasks, ended_ids, ended_attempts, worker_name, hold_max);

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
           c.run_after, c.limited, p.name, CASE WHEN c.limited THEN p.max_running END
      FROM claimed c
      JOIN programs p ON p.id = c.program_id
      JOIN program_functions f ON f.name = p.function_name
     ORDER BY c.limited, c.priority DESC, c.run_after, c.id;
END $function$;
