DROP FUNCTION cancel_task(BIGINT);
DROP FUNCTION register_program(TEXT, TEXT);
DROP FUNCTION get_task_result(BIGINT);
DROP FUNCTION run_program(TEXT, JSONB);
DROP FUNCTION get_programs();
DROP FUNCTION task_parameters_check(JSONB, JSONB);
DROP TRIGGER tasks_notify_queued ON tasks;
DROP FUNCTION tasks_notify_queued();
ALTER TABLE tasks
    DROP COLUMN attempts,
    DROP COLUMN result_table,
    DROP COLUMN progress_message,
    DROP COLUMN progress_total,
    DROP COLUMN progress_done,
    DROP COLUMN cancel_requested,
    DROP COLUMN timeout_seconds,
    DROP COLUMN max_attempts;
DROP INDEX programs_next_run_at_idx;
ALTER TABLE programs
    DROP COLUMN next_run_at,
    DROP COLUMN schedule,
    DROP COLUMN enabled,
    DROP CONSTRAINT programs_function_name_fkey;
DROP TABLE program_functions;
