-- The catalog sorts by title (then id); an index in that order lets a page stop after 24 rows
-- instead of sorting the whole catalog. The lower(title) index served no query.
CREATE INDEX books_title_id_idx ON books (title, id);
DROP INDEX books_title_sort_idx;
