-- A finished task releases the tasks waiting for it inside `task_finish`, in one set-based
-- statement for the whole batch of outcomes, instead of a row trigger per finished task (a
-- plpgsql call and an UPDATE per row: chains of 10 ran at a quarter of the plain rate).
-- `task_finish` is the only way into 'finished'. The trigger keeps the rarer ends: a failed or
-- cancelled task cancels its dependents transitively, and a batch member's end is counted.

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
     RETURNING t.id, t.attempt, t.has_dependents
    ), waiting AS (
        -- How many of each waiting task's upstreams this batch finished. (A dependent is
        -- 'pending', never one of the rows `done` updates.)
        SELECT d.task_id, count(*)::int AS finished
          FROM done JOIN task_dependencies d ON d.upstream_id = done.id
         WHERE done.has_dependents
         GROUP BY d.task_id
    ), released AS (
        -- Two nodes finishing two upstreams of one task at once: the second UPDATE waits for
        -- the first and re-evaluates against its result, so upstream_left counts both.
        UPDATE tasks t
           SET upstream_left = t.upstream_left - w.finished,
               status = CASE WHEN t.upstream_left = w.finished THEN 'scheduled' ELSE 'pending' END,
               run_after = CASE WHEN t.upstream_left = w.finished THEN now() ELSE t.run_after END
          FROM waiting w
         WHERE t.id = w.task_id AND t.status = 'pending'
    )
    SELECT done.id, done.attempt FROM done;
END $$;

CREATE OR REPLACE FUNCTION tasks_status_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    ended_now BOOLEAN := NEW.status IN ('finished', 'error', 'cancelled');
    ended_was BOOLEAN := OLD.status IN ('finished', 'error', 'cancelled');
BEGIN
    -- (A finished task's dependents are released by task_finish.)
    IF NEW.has_dependents AND NEW.status IN ('error', 'cancelled') AND NOT ended_was THEN
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

-- Only rows whose change has something to do: a dependent's upstream failing or being
-- cancelled, a batch member entering or leaving an end. A chain's finished tasks (released in
-- task_finish) call no function at all.
DROP TRIGGER tasks_status_changed ON tasks;
CREATE TRIGGER tasks_status_changed
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND ((NEW.has_dependents AND NEW.status IN ('error', 'cancelled')
                             AND OLD.status NOT IN ('finished', 'error', 'cancelled'))
                            OR (NEW.batch_id IS NOT NULL
                                AND (NEW.status IN ('finished', 'error', 'cancelled')
                                     OR OLD.status IN ('finished', 'error', 'cancelled')))))
    EXECUTE FUNCTION tasks_status_changed();

-- task_finish_then_claim: records a batch of successes and claims more in one round trip
-- (the loop's two statements, one after the other, in one transaction). The claim sees the
-- finish: a limited program's freed slots and the tasks a chain just released are claimable
-- at once. With a program limited to a few running tasks, each slot used to wait for two
-- round trips (write the outcome, then claim) before its next task could start.
-- Rows: first the recorded attempts (recorded = true; only id and attempt), then the claimed
-- tasks in task_claim's order.
CREATE FUNCTION task_finish_then_claim(worker_name TEXT, task_ids BIGINT[], task_attempts INTEGER[],
                                       results TEXT[], result_tables JSONB[],
                                       started_at TIMESTAMPTZ[], ended_at TIMESTAMPTZ[],
                                       max_tasks INTEGER, after_priority INTEGER,
                                       after_run_after TIMESTAMPTZ, after_id BIGINT,
                                       look_above BOOLEAN)
    RETURNS TABLE (recorded BOOLEAN, id BIGINT, attempt INTEGER, function_name TEXT,
                   function_kind TEXT, parameters JSONB, timeout_seconds INTEGER,
                   priority INTEGER, run_after TIMESTAMPTZ, limited BOOLEAN)
    LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    SELECT true, f.id, f.attempt, NULL::text, NULL::text, NULL::jsonb, NULL::int, NULL::int,
           NULL::timestamptz, NULL::boolean
      FROM task_finish(worker_name, task_ids, task_attempts, results, result_tables,
                       started_at, ended_at) f;
    RETURN QUERY
    SELECT false, c.id, c.attempt, c.function_name, c.function_kind, c.parameters,
           c.timeout_seconds, c.priority, c.run_after, c.limited
      FROM task_claim(worker_name, max_tasks, after_priority, after_run_after, after_id,
                      look_above) c;
END $$;
