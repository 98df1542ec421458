-- Synthetic queue for the scale bench: $1 noop tasks waiting to run, queued in the last
-- minutes (after every kept task) as one bulk enqueue would.
INSERT INTO tasks (program_id, status, created_at, run_after, queued_by)
SELECT p.id, 'scheduled', now() - ($1 - g) * interval '1 millisecond',
       now() - ($1 - g) * interval '1 millisecond', 'token bench (boss)'
  FROM generate_series(1, $1::bigint) AS g, programs p
 WHERE p.name = 'noop'
