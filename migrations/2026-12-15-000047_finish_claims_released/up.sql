-- The node that finishes a task claims the dependents its finish releases, in the same
-- statement. A task in a chain cost three updates of its row (released, claimed, finished)
-- where a plain one costs two, and between the waves of a workflow the releases went through
-- the queue: announced, heard, claimed by another round trip. 20,000 tasks in chains of 10
-- ran at 0.47-0.53x the plain rate. Now a released dependent goes from pending straight to
-- running on the finishing node, when:
--   * the node has room for it (claim_max: the writer is told how many it may take),
--   * its program is plain (no max_running or per_minute: those are claimed through their
--     limit) and not paused,
--   * and no due task waits in the queue at a higher priority: the claim's priority order
--     holds. (At its own priority a dependent may go before tasks queued earlier: a workflow
--     continues on the node that ran its previous step, at most one task per upstream
--     finished, so it never takes more of the node than it had.)
-- The others are released to the queue as before, and announced.

DROP FUNCTION task_claim(text, integer, integer, timestamp with time zone, bigint, boolean,
                         bigint[], integer[], integer);
DROP FUNCTION task_finish(text, bigint[], integer[], text[], jsonb[], timestamp with time zone[],
                          timestamp with time zone[]);

-- As in limited_hold; the rows also say whether the task has dependents (its success may claim
-- them, and the node keeps room for them).
CREATE FUNCTION task_claim(worker_name text, max_tasks integer, after_priority integer, after_run_after timestamp with time zone, after_id bigint, look_above boolean DEFAULT false, ended_ids bigint[] DEFAULT '{}', ended_attempts integer[] DEFAULT '{}', hold_max integer DEFAULT 0)
 RETURNS TABLE(id bigint, attempt integer, function_name text, function_kind text, parameters jsonb, timeout_seconds integer, priority integer, run_after timestamp with time zone, limited boolean, program_name text, max_running integer, has_dependents boolean)
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
               t.run_after, t.limited, t.has_dependents
    )
    SELECT c.id, c.attempt, f.name, f.kind, c.parameters, c.timeout_seconds, c.priority,
           c.run_after, c.limited, p.name, CASE WHEN c.limited THEN p.max_running END,
           c.has_dependents
      FROM claimed c
      JOIN programs p ON p.id = c.program_id
      JOIN program_functions f ON f.name = p.function_name
     ORDER BY c.limited, c.priority DESC, c.run_after, c.id;
END $function$;

-- As in limit_counts_ended, and up to claim_max of the dependents released are claimed by
-- worker_name in the same update (see the top). Its rows, in task_claim's shape: every
-- attempt recorded (only id and attempt; the task's columns NULL), then every task claimed.
-- The dependents are found by id (`= ANY`): joined to the finished rows, a batch of a
-- thousand was planned as scans of every pending task, 40% of the statement.
CREATE FUNCTION task_finish(worker_name text, task_ids bigint[], task_attempts integer[], results text[], result_tables jsonb[], started_at timestamp with time zone[], ended_at timestamp with time zone[], claim_max integer DEFAULT 0)
 RETURNS TABLE(id bigint, attempt integer, function_name text, function_kind text, parameters jsonb, timeout_seconds integer, priority integer, run_after timestamp with time zone, limited boolean, program_name text, max_running integer, has_dependents boolean)
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
#variable_conflict use_column
DECLARE
    done_ids      BIGINT[];
    done_attempts INTEGER[];
    upstreams     BIGINT[];
    -- The tasks waiting for those, and how many of their upstreams this batch finished.
    waiting_ids   BIGINT[];
    finished_counts INTEGER[];
    -- Those released whole that may be claimed, highest priority first, and whether any
    -- still waits for upstreams outside the batch.
    candidate_ids BIGINT[];
    candidate_priorities INTEGER[];
    shared        BOOLEAN;
    -- The highest priority of a due task waiting in the plain queue above the lowest
    -- candidate's (NULL: none waits there).
    top_waiting   INTEGER;
    take_ids      BIGINT[] := '{}';
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
    RETURN QUERY SELECT d.id, d.attempt, NULL::text, NULL::text, NULL::jsonb, NULL::integer,
                        NULL::integer, NULL::timestamptz, NULL::boolean, NULL::text,
                        NULL::integer, NULL::boolean
                   FROM unnest(done_ids, done_attempts) AS d(id, attempt);
    IF coalesce(cardinality(upstreams), 0) = 0 THEN
        RETURN;
    END IF;
    -- (A dependent is 'pending', never one of the rows just finished.)
    SELECT array_agg(w.task_id), array_agg(w.finished)
      INTO waiting_ids, finished_counts
      FROM (SELECT d.task_id, count(*)::int AS finished
              FROM task_dependencies d
             WHERE d.upstream_id = ANY (upstreams)
             GROUP BY d.task_id) w;
    -- What this batch finds of them: those it releases whole (all the upstreams they have
    -- left are in it, so no other transaction can release them meanwhile) that may be
    -- claimed, highest priority first; and whether some still wait for upstreams outside it.
    SELECT coalesce(array_agg(d.id ORDER BY d.priority DESC, d.id) FILTER (WHERE d.claimable), '{}'),
           coalesce(array_agg(d.priority ORDER BY d.priority DESC, d.id) FILTER (WHERE d.claimable), '{}'),
           coalesce(bool_or(d.upstream_left > d.finished), false)
      INTO candidate_ids, candidate_priorities, shared
      FROM (SELECT t.id, t.priority, t.upstream_left, w.finished,
                   t.upstream_left = w.finished AND NOT t.limited AND NOT p.paused AS claimable
              FROM tasks_live t
              JOIN unnest(waiting_ids, finished_counts) AS w(id, finished) ON w.id = t.id
              JOIN programs p ON p.id = t.program_id
             WHERE t.id = ANY (waiting_ids) AND t.status = 'pending') d;
    IF shared THEN
        -- Tasks that also wait for upstreams outside this batch: another transaction (the
        -- node's other writer, another node) may be releasing some of them now. Locked in id
        -- order first, so that two such transactions never lock two of them in opposite
        -- orders (a deadlock: a second's wait for both, and one batch written again). The
        -- others no other transaction releases.
        PERFORM 1
           FROM tasks_live t
           JOIN unnest(waiting_ids, finished_counts) AS w(id, finished) ON w.id = t.id
          WHERE t.id = ANY (waiting_ids) AND t.status = 'pending'
            AND t.upstream_left > w.finished
          ORDER BY t.id
            FOR NO KEY UPDATE OF t;
    END IF;
    IF claim_max > 0 AND cardinality(candidate_ids) > 0 THEN
        -- None is claimed below a due task waiting in the queue. (Of the same priority, a
        -- workflow's next task goes before the tasks queued earlier: it continues on the
        -- node that ran its upstream, at most one per upstream finished.) The walk looks only
        -- above the lowest candidate's priority.
        SELECT q.priority INTO top_waiting
          FROM tasks_live q
         WHERE q.status = 'scheduled' AND NOT q.limited AND q.run_after <= now()
           AND q.priority > candidate_priorities[cardinality(candidate_priorities)]
           AND q.program_id NOT IN (SELECT p.id FROM programs p WHERE p.paused)
         ORDER BY q.priority DESC, q.run_after, q.id
         LIMIT 1;
        SELECT coalesce(array_agg(c.id ORDER BY c.n), '{}') INTO take_ids
          FROM (SELECT c.id, c.n
                  FROM unnest(candidate_ids, candidate_priorities) WITH ORDINALITY
                       AS c(id, priority, n)
                 WHERE c.priority >= coalesce(top_waiting, c.priority)
                 ORDER BY c.n
                 LIMIT claim_max) c;
    END IF;
    -- Two nodes finishing two upstreams of one task at once: the second UPDATE waits for the
    -- first and re-evaluates against its result, so upstream_left counts both (and a task
    -- that was not released whole when this batch looked may be now: it goes to the queue).
    -- The ones released to the queue are announced, once per priority in effect (PostgreSQL
    -- folds a transaction's identical notifications; tasks_notify_requeued leaves them to
    -- this).
    RETURN QUERY
    WITH released AS (
        UPDATE tasks_live t
           SET upstream_left = t.upstream_left - r.finished,
               status = CASE WHEN t.upstream_left > r.finished THEN 'pending'
                             WHEN r.take AND NOT t.limited THEN 'running'
                             ELSE 'scheduled' END,
               run_after = CASE WHEN t.upstream_left = r.finished THEN now() ELSE t.run_after END,
               -- Taken: the same test as the status's, on the row as it is now (a program
               -- limited since the pick is claimed through its limit).
               worker_id = CASE WHEN r.take AND t.upstream_left = r.finished AND NOT t.limited
                                THEN worker_name ELSE t.worker_id END,
               start_time = CASE WHEN r.take AND t.upstream_left = r.finished AND NOT t.limited
                                 THEN now() ELSE t.start_time END,
               heartbeat_at = CASE WHEN r.take AND t.upstream_left = r.finished AND NOT t.limited
                                   THEN now() ELSE t.heartbeat_at END,
               attempt = CASE WHEN r.take AND t.upstream_left = r.finished AND NOT t.limited
                              THEN t.attempt + 1 ELSE t.attempt END,
               waiting = CASE WHEN r.take AND t.upstream_left = r.finished AND NOT t.limited
                              THEN true ELSE t.waiting END,
               progress_done = CASE WHEN r.take AND t.upstream_left = r.finished AND NOT t.limited
                                    THEN NULL ELSE t.progress_done END,
               progress_total = CASE WHEN r.take AND t.upstream_left = r.finished AND NOT t.limited
                                     THEN NULL ELSE t.progress_total END,
               progress_message = CASE WHEN r.take AND t.upstream_left = r.finished
                                            AND NOT t.limited
                                       THEN NULL ELSE t.progress_message END
          FROM (SELECT w.id, w.finished, k.id IS NOT NULL AS take
                  FROM unnest(waiting_ids, finished_counts) AS w(id, finished)
                  LEFT JOIN unnest(take_ids) AS k(id) ON k.id = w.id) r
         WHERE t.id = r.id AND t.id = ANY (waiting_ids) AND t.status = 'pending'
     RETURNING t.id, t.attempt, t.status, t.program_id, t.parameters, t.timeout_seconds,
               t.priority, t.run_after, t.limited, t.has_dependents,
               CASE WHEN t.status = 'scheduled'
                    THEN pg_notify('bookstore_tasks', t.priority::text) END AS announced
    )
    SELECT c.id, c.attempt, f.name, f.kind, c.parameters, c.timeout_seconds, c.priority,
           c.run_after, c.limited, p.name, NULL::integer, c.has_dependents
      FROM released c
      JOIN programs p ON p.id = c.program_id
      JOIN program_functions f ON f.name = p.function_name
     WHERE c.status = 'running'
     ORDER BY c.priority DESC, c.id;
END $function$;
