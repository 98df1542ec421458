-- Synthetic kept tasks for the scale bench (benches/scale.rs) and its smoke test
-- (tests/api/scale.rs): rows $1 to $2 of $3 ended tasks, one every 3 seconds up to an hour
-- ago (ten million reach back about a year), in id order as the engine writes them.
-- Programs are the built-in ones, in the shares a shop might run them; 2% end in error, 1%
-- are cancelled, the rest finished. Parameters and results look like the real programs'
-- (a name to greet, report dates, a file), so searches have something to find: one task in
-- 1,000 greets "tolkien". They go straight to the archive partition, where the app keeps
-- ended tasks (migration tasks_archive).
WITH names AS (
    SELECT array_agg(p.id ORDER BY w.slot) AS ids
      FROM unnest(ARRAY['noop', 'noop', 'noop', 'noop', 'noop', 'noop', 'noop', 'noop',
                        'hello_world', 'hello_world', 'sales_report', 'sales_report',
                        'low_stock', 'low_stock', 'purge_expired_sessions',
                        'purge_expired_sessions', 'prune_tasks', 'import_catalog', 'flaky',
                        'demo_long']) WITH ORDINALITY AS w (name, slot)
      JOIN programs p ON p.name = w.name
), rows AS (
    SELECT g,
           names.ids[1 + g % 20] AS program_id,
           g % 20 AS kind,
           CASE WHEN g % 100 < 2 THEN 'error' WHEN g % 100 = 2 THEN 'cancelled'
                ELSE 'finished' END AS status,
           now() - interval '1 hour' - ($3::bigint - g) * interval '3 seconds' AS created_at
      FROM generate_series($1::bigint, $2::bigint) AS g, names
)
INSERT INTO tasks (program_id, parameters, status, created_at, run_after, start_time, archived,
                   end_time, result, attempt, worker_id, queued_by, attempts)
SELECT program_id,
       CASE WHEN kind IN (8, 9) THEN jsonb_build_object('name',
                CASE WHEN g % 1000 = 8 THEN 'tolkien' ELSE 'reader ' || g % 5000 END)
            WHEN kind IN (10, 11) THEN jsonb_build_object(
                'from', (created_at - interval '30 days')::date, 'to', created_at::date,
                'per', CASE WHEN g % 2 = 0 THEN 'book' ELSE 'author' END)
            WHEN kind = 16 THEN '{"older_than_days": 30}'::jsonb
            WHEN kind = 17 THEN jsonb_build_object('file', 'books-' || g % 97 || '.csv')
            ELSE NULL END,
       status,
       created_at,
       created_at,
       created_at + interval '40 milliseconds',
       true,
       created_at + interval '40 milliseconds' + (g % 900) * interval '1 millisecond',
       CASE WHEN status = 'error' THEN 'connection to the supplier refused'
            WHEN status = 'cancelled' THEN NULL
            WHEN kind IN (8, 9) THEN 'Hello, ' ||
                CASE WHEN g % 1000 = 8 THEN 'tolkien' ELSE 'reader ' || g % 5000 END || '!'
            WHEN kind IN (10, 11) THEN (g % 400) || ' copies sold, ' || (g % 9000) || '.00 total'
            WHEN kind IN (12, 13) THEN (g % 30) || ' books low on stock'
            WHEN kind IN (14, 15) THEN 'Purged ' || (g % 50) || ' expired sessions.'
            WHEN kind = 16 THEN 'Deleted ' || (g % 3000) || ' tasks that ended more than 30 days ago.'
            WHEN kind = 17 THEN 'Imported ' || (g % 100) || ' books.'
            ELSE 'Done.' END,
       CASE WHEN status = 'error' THEN 3 ELSE 1 END,
       'node-' || g % 2,
       CASE WHEN g % 10 = 0 THEN 'staff boss' ELSE 'schedule' END,
       CASE WHEN status = 'error' THEN jsonb_build_array(jsonb_build_object(
                'attempt', 3, 'error', 'connection to the supplier refused', 'at', created_at))
            ELSE '[]'::jsonb END
  FROM rows
