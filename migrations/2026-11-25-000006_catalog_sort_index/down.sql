CREATE INDEX books_title_sort_idx ON books (lower(title), id);
DROP INDEX books_title_id_idx;
