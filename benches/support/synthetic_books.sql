-- Synthetic books $1..$2 of the catalog scale bench (issue 23), made from the goodbooks-10k
-- books already loaded (those with a goodreads id) and the authors present:
-- - title: the first 1-3 words of one real title (its series note dropped), the last 1-2
--   words of another, and in every third book a new word spliced from two real words (the
--   first half of one, the second half of another: "potter" + "hobbit" = "potbit"), so the
--   dictionary of words grows with the catalog as a real one does, not only the books;
-- - authors: one of all authors (real and synthetic), every seventh book a second one;
-- - popularity below every real book's (ratings_count < 2,500; the least-rated real book has
--   2,716), so a search still ranks the real book that was meant first; a rating, a year
--   (1 in 50 unknown), a price, stock (1 in 11 out of stock), 1 in 500 hidden; no ISBN.
-- Ids are numbered after the real books ($3: the highest real id), so every chunk is one
-- statement; the identity sequence is moved past them afterwards. Run with triggers off
-- (session_replication_role = replica): search_doc is computed here, as the triggers would,
-- and the words join search_words in a statement of their own.
WITH real_titles AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY id) - 1 AS i,
           regexp_split_to_array(btrim(regexp_replace(title, '\s*\([^()]*\)\s*$', '')), '\s+')
               AS words
      FROM books WHERE goodreads_id IS NOT NULL
),
real_words AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY w) - 1 AS i, w
      FROM (SELECT DISTINCT lower(w) AS w FROM real_titles, unnest(words) AS w) d
     WHERE w ~ '^[[:alpha:]]{4,}$'
),
all_authors AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY id) - 1 AS i, id, name FROM authors
),
sizes AS (
    SELECT (SELECT count(*) FROM real_titles) AS t, (SELECT count(*) FROM real_words) AS w,
           (SELECT count(*) FROM all_authors) AS a
),
planned AS MATERIALIZED (
    SELECT $3::bigint + n AS id, n,
           array_to_string(
               t1.words[1:1 + n % 3]
               || CASE WHEN n % 3 = 0
                       THEN ARRAY[left(w1.w, length(w1.w) / 2) || substr(w2.w, length(w2.w) / 2 + 1)]
                       ELSE '{}'::text[] END
               || t2.words[greatest(cardinality(t2.words) - (n / 3) % 2, 2):],
               ' ') AS title,
           a1.id AS author1, CASE WHEN n % 7 = 0 THEN a2.id END AS author2,
           a1.name || CASE WHEN n % 7 = 0 AND a2.id <> a1.id THEN ' ' || a2.name ELSE '' END
               AS author_names,
           ((n * 7717) % 2500)::integer AS ratings_count
      FROM generate_series($1::bigint, $2::bigint) AS n, sizes
      JOIN real_titles t1 ON true JOIN real_titles t2 ON true
      JOIN real_words w1 ON true JOIN real_words w2 ON true
      JOIN all_authors a1 ON true JOIN all_authors a2 ON true
     WHERE t1.i = (n * 7919) % sizes.t
       AND t2.i = (n * 15485863 + 17) % sizes.t
       AND w1.i = (n * 31337) % sizes.w
       AND w2.i = (n * 65537 + n / sizes.w) % sizes.w
       AND a1.i = (n * 104729) % sizes.a
       AND a2.i = (n * 1299709 + 3) % sizes.a
),
new_books AS (
    INSERT INTO books (id, title, year, language, price_cents, stock, created_at, updated_at,
                       ratings_count, average_rating, hidden, search_doc)
    OVERRIDING SYSTEM VALUE
    SELECT id, title,
           CASE WHEN n % 50 = 0 THEN NULL ELSE 1900 + (n * 37 % 125)::integer END,
           'eng', 299 + (n * 97 % 4000)::integer, (n % 11)::integer,
           now() - make_interval(secs => n * 30), now() - make_interval(secs => n * 30),
           ratings_count,
           CASE WHEN ratings_count = 0 THEN NULL ELSE 2.5 + (n * 13 % 250) / 100.0 END,
           n % 500 = 0,
           setweight(search_words_of(title), 'A') || setweight(search_words_of(author_names), 'B')
      FROM planned
    RETURNING id
)
INSERT INTO book_authors (book_id, author_id, position)
SELECT id, author1, 0 FROM planned
UNION ALL
SELECT id, author2, 1 FROM planned WHERE author2 IS NOT NULL AND author2 <> author1
