DROP FUNCTION task_connection_lost(TEXT, BIGINT, INTEGER, TEXT, BIGINT);

-- task_rescue_lost as in migration engine_v2.
CREATE OR REPLACE FUNCTION task_rescue_lost(lease_seconds DOUBLE PRECISION) RETURNS INTEGER
    LANGUAGE plpgsql AS $$
DECLARE
    rescued INTEGER;
BEGIN
    IF pg_postmaster_start_time() > now() - make_interval(secs => lease_seconds) THEN
        RETURN 0;
    END IF;
    UPDATE tasks SET
        attempts = attempts || jsonb_build_array(jsonb_build_object('attempt', attempt,
            'error', format('worker lost (%s sent no heartbeat for %s s)', worker_id, lease_seconds),
            'at', now())),
        status = CASE WHEN cancel_requested THEN 'cancelled'
                      WHEN attempt >= max_attempts THEN 'error' ELSE 'scheduled' END,
        end_time = CASE WHEN attempt >= max_attempts OR cancel_requested THEN now() END,
        run_after = now(),
        result = CASE WHEN cancel_requested THEN 'Cancelled; its worker was lost.'
                      WHEN attempt >= max_attempts THEN format('Failed after %s attempts: worker lost', attempt)
                      ELSE result END
     WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => lease_seconds);
    GET DIAGNOSTICS rescued = ROW_COUNT;
    RETURN rescued;
END $$;

-- task_heartbeat as in migration engine_v2.
DROP FUNCTION task_heartbeat(TEXT, BIGINT[], INTEGER[], BOOLEAN[]);
CREATE FUNCTION task_heartbeat(worker_name TEXT, task_ids BIGINT[], task_attempts INTEGER[])
    RETURNS TABLE (id BIGINT, attempt INTEGER, cancel_requested BOOLEAN)
    LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH beat AS (
        UPDATE tasks t SET heartbeat_at = now()
          FROM unnest(task_ids, task_attempts) AS v(id, attempt)
         WHERE t.id = v.id AND t.attempt = v.attempt AND t.worker_id = worker_name
           AND t.status = 'running'
     RETURNING t.id, t.attempt, t.cancel_requested
    )
    SELECT beat.id, beat.attempt, beat.cancel_requested FROM beat;
END $$;

-- task_claim as in migration audit_and_console.
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
               heartbeat_at = now(), attempt = t.attempt + 1,
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

DROP FUNCTION task_may_refund(JSONB);
ALTER TABLE program_functions DROP COLUMN transactional;
ALTER TABLE tasks DROP COLUMN waiting;
