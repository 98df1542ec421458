-- Search that forgives: word order does not matter, title and author words mix, a typo of one
-- or two letters per word still finds the book, and results rank by relevance with
-- popularity (the ratings count) breaking ties. Staff can hide a book without deleting it.
--
-- How: each book carries `search_doc`, the folded words of its title (weight A) and of its
-- authors' names (weight B), kept current by triggers. Every word ever indexed is also in
-- `search_words`; a query word is widened to the dictionary words within its typo budget
-- (Levenshtein, prefiltered by length), and a book matches when every query word matches one
-- of its widenings. All of the rule lives here; Rust only passes the visitor's text.
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;

ALTER TABLE books
    -- Popularity: how many readers rated the book (goodbooks-10k's ratings_count).
    ADD COLUMN ratings_count INTEGER NOT NULL DEFAULT 0 CHECK (ratings_count >= 0),
    -- Mean rating out of 5; NULL when nobody rated it.
    ADD COLUMN average_rating REAL CHECK (average_rating BETWEEN 0 AND 5),
    -- Hidden books leave the catalog but keep their rows, so orders still show them.
    ADD COLUMN hidden BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN search_doc TSVECTOR NOT NULL DEFAULT ''::tsvector;

-- Folded text as separate words: accents and case folded, every run of non-alphanumerics a
-- word break ("J.K." is "j k", "sorcerer's" is "sorcerer s"). Query and books use the same.
CREATE FUNCTION search_words_of(txt TEXT) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT to_tsvector('pg_catalog.simple',
                             regexp_replace(search_fold(txt), '[^[:alnum:]]+', ' ', 'g')) $$;

CREATE FUNCTION book_search_doc(book_title TEXT, book BIGINT) RETURNS tsvector
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT setweight(search_words_of(book_title), 'A')
            || setweight(search_words_of(coalesce(
                   (SELECT string_agg(a.name, ' ')
                      FROM book_authors ba JOIN authors a ON a.id = ba.author_id
                     WHERE ba.book_id = book), '')), 'B')
    $$;

CREATE TABLE search_words (
    word TEXT PRIMARY KEY
);
-- Typo candidates are the words of about the same length; the index alone serves them.
CREATE INDEX search_words_length_idx ON search_words (length(word)) INCLUDE (word);
-- "harry pot" while typing: the last word also matches as a prefix.
CREATE INDEX search_words_prefix_idx ON search_words (word text_pattern_ops);

CREATE FUNCTION books_search_doc_from_title() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_doc := book_search_doc(NEW.title, NEW.id);
        RETURN NEW;
    END $$;
CREATE TRIGGER books_search_doc BEFORE INSERT OR UPDATE OF title ON books
    FOR EACH ROW EXECUTE FUNCTION books_search_doc_from_title();

-- New words join the dictionary. Words no book uses any more stay: they only widen a query
-- to a word that matches nothing.
CREATE FUNCTION search_words_remember() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO search_words (word)
        SELECT DISTINCT lexeme FROM changed_books, unnest(changed_books.search_doc)
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$;
CREATE TRIGGER books_search_words_insert AFTER INSERT ON books
    REFERENCING NEW TABLE AS changed_books
    FOR EACH STATEMENT EXECUTE FUNCTION search_words_remember();
-- On updates, only rows whose words changed (a title edit, a refresh after an author change):
-- checkouts update stock on every sale and must not pay for unnesting documents.
CREATE FUNCTION search_words_remember_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO search_words (word)
        SELECT DISTINCT lexeme
          FROM changed_books n JOIN earlier_books o ON o.id = n.id, unnest(n.search_doc)
         WHERE n.search_doc IS DISTINCT FROM o.search_doc
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$;
CREATE TRIGGER books_search_words_update AFTER UPDATE ON books
    REFERENCING OLD TABLE AS earlier_books NEW TABLE AS changed_books
    FOR EACH STATEMENT EXECUTE FUNCTION search_words_remember_changed();

-- Authors are linked after the book row exists (and relinked on edits): refresh those books
-- once per statement, so an import of thousands of links is one UPDATE.
CREATE FUNCTION books_search_doc_refresh_linked() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE books SET search_doc = book_search_doc(books.title, books.id)
         WHERE books.id IN (SELECT book_id FROM changed_links);
        RETURN NULL;
    END $$;
CREATE TRIGGER book_authors_search_insert AFTER INSERT ON book_authors
    REFERENCING NEW TABLE AS changed_links
    FOR EACH STATEMENT EXECUTE FUNCTION books_search_doc_refresh_linked();
CREATE TRIGGER book_authors_search_update AFTER UPDATE ON book_authors
    REFERENCING NEW TABLE AS changed_links
    FOR EACH STATEMENT EXECUTE FUNCTION books_search_doc_refresh_linked();
CREATE TRIGGER book_authors_search_delete AFTER DELETE ON book_authors
    REFERENCING OLD TABLE AS changed_links
    FOR EACH STATEMENT EXECUTE FUNCTION books_search_doc_refresh_linked();

CREATE FUNCTION books_search_doc_refresh_renamed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE books SET search_doc = book_search_doc(books.title, books.id)
         WHERE books.id IN (SELECT ba.book_id FROM book_authors ba
                              JOIN renamed_authors r ON r.id = ba.author_id);
        RETURN NULL;
    END $$;
CREATE TRIGGER authors_search_rename AFTER UPDATE ON authors
    REFERENCING NEW TABLE AS renamed_authors
    FOR EACH STATEMENT EXECUTE FUNCTION books_search_doc_refresh_renamed();

UPDATE books SET search_doc = book_search_doc(title, id);
CREATE INDEX books_search_doc_idx ON books USING gin (search_doc);
CREATE INDEX books_popularity_idx ON books (ratings_count DESC, id);
CREATE INDEX books_rating_idx ON books (average_rating DESC NULLS LAST, id);

-- The title a shopper would type: without the series note ("The Hunger Games (The Hunger
-- Games, #1)" is "the hunger games"), folded, one space between words. A query equal to it
-- ranks that book first.
CREATE FUNCTION search_title_key(txt TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT btrim(regexp_replace(search_fold(regexp_replace(txt, '\s*\([^()]*\)\s*$', '')),
                                      '[^[:alnum:]]+', ' ', 'g')) $$;
ALTER TABLE books
    ADD COLUMN title_key TEXT NOT NULL GENERATED ALWAYS AS (search_title_key(title)) STORED;
CREATE INDEX books_title_key_idx ON books (title_key);

-- Whether `b` is `a` with two neighbouring letters swapped, the commonest typo ("gmaes"): it
-- costs Levenshtein two edits, but counts as one.
CREATE FUNCTION search_one_swap(a TEXT, b TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$
        SELECT length(a) = length(b) AND EXISTS (
            SELECT 1 FROM generate_series(1, length(a) - 1) AS i
             WHERE substr(a, i, 1) = substr(b, i + 1, 1)
               AND substr(a, i + 1, 1) = substr(b, i, 1)
               AND substr(a, 1, i - 1) = substr(b, 1, i - 1)
               AND substr(a, i + 2) = substr(b, i + 2))
    $$;

-- How many letters a query word may get wrong: none in one or two letters, one up to five,
-- two from six ("hary" finds "harry", "tolkein" finds "tolkien").
CREATE FUNCTION search_typo_budget(word TEXT) RETURNS INTEGER
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT CASE WHEN length(word) <= 2 THEN 0 WHEN length(word) <= 5 THEN 1 ELSE 2 END $$;

-- Each word of the query with the dictionary words it may stand for and how far each is
-- (0: the word itself). A word the catalog knows stands for itself only, unless
-- `forgive_known_words`; an unknown word stands for the words within its typo budget and, when
-- it is the last word typed, for the words it begins ("harry pot" finds "potter").
CREATE FUNCTION search_widenings(query TEXT, forgive_known_words BOOLEAN)
    RETURNS TABLE (term TEXT, word TEXT, distance INTEGER)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        WITH terms AS (
            SELECT t.lexeme AS term,
                   search_typo_budget(t.lexeme) AS budget,
                   t.positions[1] = max(t.positions[1]) OVER () AS last,
                   EXISTS (SELECT 1 FROM search_words sw WHERE sw.word = t.lexeme) AS known
              FROM unnest(search_words_of(query)) AS t
        )
        SELECT terms.term, terms.term, 0 FROM terms WHERE terms.known
        UNION
        SELECT terms.term, w.word, min(w.distance)::integer
          FROM terms
          CROSS JOIN LATERAL (
              SELECT e.word,
                     CASE WHEN e.edits = 2 AND search_one_swap(terms.term, e.word) THEN 1
                          ELSE e.edits END AS distance
                -- OFFSET 0 keeps the subquery apart, so Levenshtein runs once per word.
                FROM (SELECT sw.word,
                             levenshtein_less_equal(terms.term, sw.word, 2) AS edits
                        FROM search_words sw
                       WHERE length(sw.word) BETWEEN length(terms.term) - terms.budget
                                                 AND length(terms.term) + terms.budget
                      OFFSET 0) AS e
               WHERE e.edits <= 2
              UNION ALL
              SELECT sw.word, terms.budget
                FROM search_words sw
               WHERE terms.last AND length(terms.term) >= 3
                 -- The range is what the text_pattern_ops index serves; LIKE alone is not
                 -- (its pattern is not a constant).
                 AND sw.word ~>=~ terms.term AND sw.word ~<~ (terms.term || chr(1114111))
                 AND starts_with(sw.word, terms.term)
          ) AS w
         WHERE (forgive_known_words OR NOT terms.known)
           AND w.distance BETWEEN 1 AND terms.budget
         GROUP BY terms.term, w.word
    $$;

-- What a catalog search needs, from the visitor's text: `matching` finds the books (every
-- query word, or one of its widenings; NULL when some word has none), `exact` tells the books
-- that have every word as typed, `title_key` the book titled exactly so.
CREATE FUNCTION search_queries(query TEXT, forgive_known_words BOOLEAN)
    RETURNS TABLE (matching tsquery, exact tsquery, title_key TEXT)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        WITH widened AS (
            SELECT t.lexeme AS term,
                   bool_or(w.distance = 0) AS known,
                   string_agg(quote_literal(w.word), ' | ') AS alternatives
              FROM unnest(search_words_of(query)) AS t
              LEFT JOIN search_widenings(query, forgive_known_words) AS w ON w.term = t.lexeme
             GROUP BY t.lexeme
        )
        SELECT CASE WHEN bool_and(alternatives IS NOT NULL)
                    THEN string_agg('(' || alternatives || ')', ' & ')::tsquery END,
               CASE WHEN bool_and(known) THEN string_agg(quote_literal(term), ' & ')::tsquery END,
               search_title_key(query)
          FROM widened
        HAVING count(*) > 0
    $$;

-- "Did you mean": the title or author name closest to the query (trigram word similarity,
-- served by the trigram indexes), the more popular first when equally close.
CREATE FUNCTION search_suggestion(query TEXT) RETURNS TEXT
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT suggestion FROM (
            SELECT regexp_replace(b.title, '\s*\([^()]*\)\s*$', '') AS suggestion,
                   word_similarity(search_fold(query), search_fold(b.title)) AS closeness,
                   b.ratings_count AS popularity
              FROM books b
             WHERE NOT b.hidden AND search_fold(query) <% search_fold(b.title)
            UNION ALL
            SELECT a.name, word_similarity(search_fold(query), search_fold(a.name)),
                   (SELECT coalesce(max(b.ratings_count), 0) FROM book_authors ba
                      JOIN books b ON b.id = ba.book_id WHERE ba.author_id = a.id)
              FROM authors a
             WHERE search_fold(query) <% search_fold(a.name)
        ) AS candidates
        ORDER BY closeness DESC, popularity DESC
        LIMIT 1
    $$;
