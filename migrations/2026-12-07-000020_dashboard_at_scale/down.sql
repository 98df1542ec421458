-- Reverts dashboard_at_scale: get_programs() as engine_v3 left it, then the rest.
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
           WHERE t.program_id = p.id ORDER BY t.id DESC LIMIT 1
      ) last ON true
     ORDER BY p.name
$$;
DROP FUNCTION task_id_at(TIMESTAMPTZ);
DROP INDEX tasks_failed_end_time_idx;
DROP INDEX tasks_pending_idx;
