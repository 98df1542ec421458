-- The staff pages over millions of kept tasks (issue 23): what lets them read a few index
-- entries instead of every task. Every index on tasks costs the engine a write whenever a
-- row version enters it, so both new indexes are partial: only the rare rows they serve pay.
-- (Building them reads the whole table once, holding off task writes meanwhile: about ten
-- seconds at ten million tasks.)

-- "pending" (waiting for other tasks) counted on the overview and listed by the status
-- filter, newest first, from its own index instead of a scan of every task. Only tasks
-- queued after others enter it; leaving pending writes nothing here.
CREATE INDEX tasks_pending_idx ON tasks (id DESC) WHERE status = 'pending';

-- The overview's "failures in the last 24 hours", latest first: ten entries of this index
-- instead of every failure ever kept, sorted. Only a task that fails enters it. (end_time is
-- new among indexed columns, but every statement that sets it also sets status, which the
-- partial indexes already name: no update that was HOT stops being HOT.)
CREATE INDEX tasks_failed_end_time_idx ON tasks (end_time DESC) WHERE status = 'error';

-- task_id_at(at): the lowest task id created at or after `at` (one more than the highest id
-- when none is). Ids grow in the order tasks are queued and created_at with them (it is the
-- queuing transaction's start), so a binary search over the primary key finds where a time
-- begins in about 25 index probes, without a scan and without an index on created_at. Where
-- a hand-written created_at breaks the order the answer is approximate: callers use it to
-- decide where to read, and still filter on created_at itself.
CREATE FUNCTION task_id_at(at TIMESTAMPTZ) RETURNS BIGINT
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    lo BIGINT;   -- every task below lo was created before `at`
    hi BIGINT;   -- every task from hi on was created at or after it
    mid BIGINT;
    probe_id BIGINT;
    probe_at TIMESTAMPTZ;
BEGIN
    SELECT min(id), max(id) + 1 INTO lo, hi FROM tasks;
    IF lo IS NULL THEN
        RETURN 1;
    END IF;
    WHILE lo < hi LOOP
        mid := lo + (hi - lo) / 2;
        SELECT id, created_at INTO probe_id, probe_at
          FROM tasks WHERE id >= mid ORDER BY id LIMIT 1;
        IF probe_id IS NULL OR probe_at >= at THEN
            hi := mid;
        ELSE
            lo := probe_id + 1;
        END IF;
    END LOOP;
    RETURN lo;
END $$;

-- get_programs(): as before. Each program's last task now comes from the (program_id, id
-- DESC) index: ordered by id alone, the planner walked the primary key backwards past every
-- newer task of the other programs (0.9 s with a million queued noop tasks on top).
CREATE OR REPLACE FUNCTION get_programs()
    RETURNS TABLE (id BIGINT, name TEXT, function_name TEXT, description TEXT,
                   parameters JSONB, enabled BOOLEAN, schedule TEXT, next_run_at TIMESTAMPTZ,
                   last_task_id BIGINT, last_status TEXT, last_run_at TIMESTAMPTZ,
                   paused BOOLEAN, priority INTEGER, max_running INTEGER, per_minute INTEGER)
    LANGUAGE sql STABLE AS $$
    SELECT p.id, p.name, p.function_name, p.description, f.parameters, p.enabled, p.schedule,
           p.next_run_at, last.id, last.status, last.created_at, p.paused, p.priority,
           p.max_running, p.per_minute
      FROM programs p
      LEFT JOIN program_functions f ON f.name = p.function_name
      LEFT JOIN LATERAL (
          SELECT t.id, t.status, t.created_at FROM tasks t
           WHERE t.program_id = p.id ORDER BY t.program_id, t.id DESC LIMIT 1
      ) last ON true
     ORDER BY p.name
$$;
