-- A book's search document from its title and its authors' names, as one function: the
-- demo seed computes it while it inserts the books (their authors are linked only after),
-- and the triggers through book_search_doc. The names go in cover order: string_agg without
-- ORDER BY gave them in whatever order the plan read the links, so the words' positions
-- (which phrase matching reads) depended on the plan.
CREATE FUNCTION search_doc_of(book_title TEXT, author_names TEXT) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT setweight(search_words_of(book_title), 'A')
                 || setweight(search_words_of(coalesce(author_names, '')), 'B') $$;

CREATE OR REPLACE FUNCTION book_search_doc(book_title TEXT, book BIGINT) RETURNS tsvector
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT search_doc_of(book_title,
                             (SELECT string_agg(a.name, ' ' ORDER BY ba.position)
                                FROM book_authors ba JOIN authors a ON a.id = ba.author_id
                               WHERE ba.book_id = book))
    $$;
