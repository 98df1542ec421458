-- Synthetic authors for the catalog scale bench (issue 23): $1 new names, each the first word
-- of one goodbooks author and the last word of another ("Suzanne Rowling", "Stephen Austen"),
-- so their words are the real authors' words. Names already taken are skipped, so a few
-- fewer than $1 may be added. Deterministic: the same catalog gives the same names.
WITH real_names AS MATERIALIZED (
    SELECT DISTINCT a.name FROM authors a
      JOIN book_authors ba ON ba.author_id = a.id
      JOIN books b ON b.id = ba.book_id
     WHERE b.goodreads_id IS NOT NULL
),
firsts AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY w) - 1 AS i, w
      FROM (SELECT DISTINCT split_part(name, ' ', 1) AS w FROM real_names) f
     WHERE w ~ '^[[:alpha:]]{2,}$'
),
lasts AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY w) - 1 AS i, w
      FROM (SELECT DISTINCT regexp_replace(name, '^.*\s', '') AS w FROM real_names) l
     WHERE w ~ '^[[:alpha:]]{2,}$'
),
sizes AS (SELECT (SELECT count(*) FROM firsts) AS f, (SELECT count(*) FROM lasts) AS l)
INSERT INTO authors (name)
SELECT DISTINCT firsts.w || ' ' || lasts.w
  FROM generate_series(1, $1::bigint) AS k, sizes
  JOIN firsts ON true JOIN lasts ON true
 WHERE firsts.i = (k * 7919) % sizes.f
   AND lasts.i = (k * 104729 + k / sizes.f) % sizes.l
ON CONFLICT (name) DO NOTHING
