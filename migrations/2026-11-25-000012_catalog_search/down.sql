DROP FUNCTION search_suggestion(TEXT);
DROP FUNCTION search_queries(TEXT, BOOLEAN);
DROP FUNCTION search_widenings(TEXT, BOOLEAN);
DROP FUNCTION search_typo_budget(TEXT);
DROP FUNCTION search_one_swap(TEXT, TEXT);
ALTER TABLE books DROP COLUMN title_key;
DROP FUNCTION search_title_key(TEXT);
DROP TRIGGER authors_search_rename ON authors;
DROP FUNCTION books_search_doc_refresh_renamed();
DROP TRIGGER book_authors_search_insert ON book_authors;
DROP TRIGGER book_authors_search_update ON book_authors;
DROP TRIGGER book_authors_search_delete ON book_authors;
DROP FUNCTION books_search_doc_refresh_linked();
DROP TRIGGER books_search_words_insert ON books;
DROP TRIGGER books_search_words_update ON books;
DROP FUNCTION search_words_remember();
DROP FUNCTION search_words_remember_changed();
DROP TRIGGER books_search_doc ON books;
DROP FUNCTION books_search_doc_from_title();
DROP TABLE search_words;
DROP INDEX books_rating_idx;
DROP INDEX books_popularity_idx;
ALTER TABLE books
    DROP COLUMN search_doc,
    DROP COLUMN hidden,
    DROP COLUMN average_rating,
    DROP COLUMN ratings_count;
DROP FUNCTION book_search_doc(TEXT, BIGINT);
DROP FUNCTION search_words_of(TEXT);
DROP EXTENSION IF EXISTS fuzzystrmatch;
