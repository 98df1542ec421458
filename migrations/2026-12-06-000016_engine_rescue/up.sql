-- A lost worker or a lost database connection no longer spends an attempt that could not have
-- had an effect (issue 21: a killed node's 19 claimed, never started tasks ended in error, and
-- so did transactional tasks whose connection died with the postmaster).
--
-- Not spending an attempt here means giving one back: max_attempts + 1, as retry_task does.
-- The attempt number itself only ever grows, because it fences the old run: a worker that was
-- frozen rather than dead must find its (task, attempt) gone when it wakes, even if the same
-- worker claims the task again. (A shutdown's re-queue lowers the attempt number instead: the
-- worker gives those up itself and claims nothing more.)

-- Claimed, but still in its worker's local queue (as the worker's last heartbeat said): such
-- an attempt has not started, so losing its worker costs it nothing.
ALTER TABLE tasks ADD COLUMN waiting BOOLEAN NOT NULL DEFAULT false;

-- A Rust function that does its work in the transaction recording its outcome (the app writes
-- this at start). SQL programs always do. When such an attempt is lost, its work rolled back.
ALTER TABLE program_functions ADD COLUMN transactional BOOLEAN NOT NULL DEFAULT false;

-- Given-back attempts are marked in the history ({"refunded": true}). A task given back this
-- many times is treated as failing: a task whose run kills its worker or its connection must
-- not loop for ever.
CREATE FUNCTION task_may_refund(attempts JSONB) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT count(*) < 5 FROM jsonb_array_elements(coalesce(attempts, '[]')) e
     WHERE e->>'refunded' = 'true'
$$;

-- task_claim: as before (migration audit_and_console), and the attempt starts out waiting.
CREATE OR REPLACE FUNCTION task_claim(worker_name TEXT, max_tasks INTEGER,
                                      after_run_after TIMESTAMPTZ, after_id BIGINT)
    RETURNS TABLE (id BIGINT, attempt INTEGER, function_name TEXT, function_kind TEXT,
                   parameters JSONB, timeout_seconds INTEGER, run_after TIMESTAMPTZ)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH picked AS (
        SELECT q.id FROM tasks q
         WHERE q.status = 'scheduled' AND q.run_after <= now()
           AND (q.run_after, q.id) > (coalesce(after_run_after, '-infinity'), coalesce(after_id, 0))
           AND q.program_id <> ALL (coalesce((SELECT array_agg(p.id) FROM programs p WHERE p.paused),
                                             '{}'::bigint[]))
         ORDER BY q.run_after, q.id
         LIMIT max_tasks
           FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE tasks t
           SET status = 'running', worker_id = worker_name, start_time = now(),
               heartbeat_at = now(), attempt = t.attempt + 1, waiting = true,
               progress_done = NULL, progress_total = NULL, progress_message = NULL
          FROM picked
         WHERE t.id = picked.id
     RETURNING t.id, t.attempt, t.program_id, t.parameters, t.timeout_seconds, t.run_after
    )
    SELECT c.id, c.attempt, f.name, f.kind, c.parameters, c.timeout_seconds, c.run_after
      FROM claimed c
      JOIN programs p ON p.id = c.program_id
      JOIN program_functions f ON f.name = p.function_name
     ORDER BY c.run_after, c.id;
END $$;

-- task_heartbeat: also says which attempts have started (the rest still wait in the local
-- queue). Same row update as before, so still a HOT update.
DROP FUNCTION task_heartbeat(TEXT, BIGINT[], INTEGER[]);
CREATE FUNCTION task_heartbeat(worker_name TEXT, task_ids BIGINT[], task_attempts INTEGER[],
                               task_started BOOLEAN[])
    RETURNS TABLE (id BIGINT, attempt INTEGER, cancel_requested BOOLEAN)
    LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH beat AS (
        UPDATE tasks t SET heartbeat_at = now(), waiting = NOT v.started
          FROM unnest(task_ids, task_attempts, task_started) AS v(id, attempt, started)
         WHERE t.id = v.id AND t.attempt = v.attempt AND t.worker_id = worker_name
           AND t.status = 'running'
     RETURNING t.id, t.attempt, t.cancel_requested
    )
    SELECT beat.id, beat.attempt, beat.cancel_requested FROM beat;
END $$;

-- task_rescue_lost: running tasks whose worker sent no heartbeat for lease_seconds. One that
-- never started, or whose program is transactional (its work rolled back with the worker's
-- connection), goes back to the queue with its attempt given back; any other goes back, or
-- ends in 'error' when its attempts are spent, as before; 'cancelled' if someone asked.
-- (A task that started after its worker's last heartbeat counts as not started: it runs
-- again, which is what "at least once" allows.)
-- Not within one lease of the server's start: after a restart every worker needs a moment to
-- reconnect and renew (or record) what it holds before anyone may judge it lost.
CREATE OR REPLACE FUNCTION task_rescue_lost(lease_seconds DOUBLE PRECISION) RETURNS INTEGER
    LANGUAGE plpgsql AS $$
DECLARE
    rescued INTEGER;
BEGIN
    IF pg_postmaster_start_time() > now() - make_interval(secs => lease_seconds) THEN
        RETURN 0;
    END IF;
    WITH lost AS (
        SELECT t.id,
               (t.waiting OR f.kind = 'sql' OR f.transactional)
                   AND task_may_refund(t.attempts) AS refund,
               format('worker lost (%s sent no heartbeat for %s s)', t.worker_id, lease_seconds)
                   || CASE WHEN NOT task_may_refund(t.attempts) THEN ''
                           WHEN t.waiting THEN ' before the attempt started; not counted'
                           WHEN f.kind = 'sql' OR f.transactional
                               THEN '; its transaction rolled back, so the attempt is not counted'
                           ELSE '' END AS error
          FROM tasks t
          JOIN programs p ON p.id = t.program_id
          JOIN program_functions f ON f.name = p.function_name
         WHERE t.status = 'running' AND t.heartbeat_at < now() - make_interval(secs => lease_seconds)
    )
    UPDATE tasks t SET
        attempts = t.attempts || jsonb_build_array(jsonb_build_object('attempt', t.attempt,
            'error', lost.error, 'started', t.start_time, 'at', now(), 'refunded', lost.refund)),
        max_attempts = t.max_attempts + CASE WHEN lost.refund THEN 1 ELSE 0 END,
        status = CASE WHEN t.cancel_requested THEN 'cancelled'
                      WHEN lost.refund OR t.attempt < t.max_attempts THEN 'scheduled'
                      ELSE 'error' END,
        end_time = CASE WHEN t.cancel_requested OR (NOT lost.refund AND t.attempt >= t.max_attempts)
                        THEN now() END,
        run_after = now(), waiting = false,
        result = CASE WHEN t.cancel_requested THEN 'Cancelled; its worker was lost.'
                      WHEN NOT lost.refund AND t.attempt >= t.max_attempts
                          THEN format('Failed after %s attempts: worker lost', t.attempt)
                      ELSE t.result END
      FROM lost
     WHERE t.id = lost.id
       -- Checked again on the row as it is now: a heartbeat that came in meanwhile wins.
       AND t.status = 'running' AND t.heartbeat_at < now() - make_interval(secs => lease_seconds);
    GET DIAGNOSTICS rescued = ROW_COUNT;
    RETURN rescued;
END $$;

-- task_connection_lost: a transactional attempt lost its database connection (the server
-- restarted, a failover): its work rolled back, so it goes back to the queue with its attempt
-- given back, and the history says why. Past the give-back limit it fails as any error does.
-- Returns the new status, NULL when the worker no longer holds the attempt.
CREATE FUNCTION task_connection_lost(worker_name TEXT, task_id BIGINT, task_attempt INTEGER,
                                     error TEXT, retry_base_ms BIGINT) RETURNS TEXT
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    new_status TEXT;
BEGIN
    UPDATE tasks SET
        attempts = attempts || jsonb_build_array(jsonb_build_object(
            'attempt', attempt,
            'error', 'the database connection was lost (' || task_connection_lost.error
                     || '); its transaction rolled back, so the attempt is not counted',
            'started', start_time, 'at', now(), 'refunded', true)),
        max_attempts = max_attempts + 1,
        status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'scheduled' END,
        end_time = CASE WHEN cancel_requested THEN now() END,
        result = CASE WHEN cancel_requested THEN 'Cancelled; its database connection was lost.'
                      ELSE result END,
        run_after = now(), waiting = false
     WHERE id = task_id AND attempt = task_attempt AND worker_id = worker_name
       AND status = 'running' AND task_may_refund(attempts)
    RETURNING status INTO new_status;
    IF FOUND THEN
        RETURN new_status;
    END IF;
    RETURN task_fail(worker_name, task_id, task_attempt,
                     'the database connection was lost: ' || error, true, retry_base_ms);
END $$;
