-- Queueing a workflow into a table whose statistics say "empty" (just emptied and vacuumed,
-- or never analyzed yet): plpgsql keeps a generic plan for a statement after five calls, and
-- planned on those statistics, task_enqueue's lookups of the upstream tasks by id (the check
-- that they exist, the lock, the mark) were sequential scans of every task, kept for the rest
-- of the session. 6,000 tasks in chains of 10, queued in one DO block, took 12.3 s, and
-- 20,000 minutes (each call scanning all the tasks queued before it). task_enqueue only ever
-- reads tasks by key, so its plans keep to the indexes: 6,000 in 4.8 s, 20,000 in 15 s, and a
-- plain run_program a little quicker (20,000 in 2.9 s, 3.2 before).
--
-- (A later CREATE OR REPLACE of task_enqueue must restate this SET: it replaces the
-- function's settings too.)
ALTER FUNCTION task_enqueue(text, jsonb, integer, text, interval, bigint[], bigint)
    SET enable_seqscan = off;
