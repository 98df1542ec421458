CREATE OR REPLACE FUNCTION book_search_doc(book_title TEXT, book BIGINT) RETURNS tsvector
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT setweight(search_words_of(book_title), 'A')
            || setweight(search_words_of(coalesce(
                   (SELECT string_agg(a.name, ' ')
                      FROM book_authors ba JOIN authors a ON a.id = ba.author_id
                     WHERE ba.book_id = book), '')), 'B')
    $$;
DROP FUNCTION search_doc_of(TEXT, TEXT);
