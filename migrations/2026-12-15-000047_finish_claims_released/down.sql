-- Back to limited_hold's claim (no has_dependents in its rows) and limit_counts_ended's
-- finish (released dependents all go to the queue).
DROP FUNCTION task_claim(text, integer, integer, timestamp with time zone, bigint, boolean,
                         bigint[], integer[], integer);
DROP FUNCTION task_finish(text, bigint[], integer[], text[], jsonb[], timestamp with time zone[],
                          timestamp with time zone[], integer);

-- limited_hold's claim.
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

-- limit_counts_ended's finish: it claims nothing.
CREATE FUNCTION task_finish(worker_name text, task_ids bigint[], task_attempts integer[], results text[], result_tables jsonb[], started_at timestamp with time zone[], ended_at timestamp with time zone[])
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
