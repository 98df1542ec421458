DROP TABLE book_authors;
DROP TABLE books;
DROP TABLE authors;
DROP FUNCTION search_fold(TEXT);
-- The extensions stay: other objects in the database may use them.
