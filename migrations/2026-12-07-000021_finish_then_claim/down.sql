-- Reverts finish_then_claim: task_finish as engine_v2 wrote it, the trigger as engine_v3 did.
DROP FUNCTION task_finish_then_claim(TEXT, BIGINT[], INTEGER[], TEXT[], JSONB[], TIMESTAMPTZ[],
                                    TIMESTAMPTZ[], INTEGER, INTEGER, TIMESTAMPTZ, BIGINT, BOOLEAN);
CREATE OR REPLACE FUNCTION task_finish(worker_name TEXT, task_ids BIGINT[], task_attempts INTEGER[],
                            results TEXT[], result_tables JSONB[],
                            started_at TIMESTAMPTZ[], ended_at TIMESTAMPTZ[])
    RETURNS TABLE (id BIGINT, attempt INTEGER)
    -- A generic plan cannot see how many attempts the arrays hold and joins them the slow
    -- way (measured: 20x slower from the sixth call on); plan each call for its arrays.
    LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH done AS (
        UPDATE tasks t
           SET status = 'finished', start_time = v.start_at, end_time = v.end_at,
               result = v.result, result_table = v.result_table,
               progress_done = coalesce(t.progress_total, t.progress_done)
          FROM unnest(task_ids, task_attempts, results, result_tables, started_at, ended_at)
               AS v(id, attempt, result, result_table, start_at, end_at)
         WHERE t.id = v.id AND t.attempt = v.attempt AND t.worker_id = worker_name
           AND t.status = 'running'
     RETURNING t.id, t.attempt
    )
    SELECT done.id, done.attempt FROM done;
END $$;

CREATE OR REPLACE FUNCTION tasks_status_changed() RETURNS trigger
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
DROP TRIGGER tasks_status_changed ON tasks;
CREATE TRIGGER tasks_status_changed
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN ((NEW.has_dependents OR NEW.batch_id IS NOT NULL)
                       AND OLD.status IS DISTINCT FROM NEW.status
                       AND (NEW.status IN ('finished', 'error', 'cancelled')
                            OR OLD.status IN ('finished', 'error', 'cancelled')))
    EXECUTE FUNCTION tasks_status_changed();
