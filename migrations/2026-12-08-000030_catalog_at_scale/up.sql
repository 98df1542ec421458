-- The catalog at a million books (issue 23).
--
-- Typo candidates keep the query word's first letter, as Lucene's spell checker does by
-- default (DirectSpellChecker, minPrefix 1): first letters are the ones people get right,
-- and the words of about the same length are most of a dictionary that grows with the
-- catalog (at a million books, 286,545 of 316,903 words for "tolkein": 40 ms of Levenshtein
-- per query word), while the ones with its first letter too are 15,290. The commonest
-- typo, two neighbouring letters swapped, is still forgiven at the start ("ahrry"): words
-- beginning with the second letter then the first are candidates too.
CREATE INDEX search_words_initial_idx ON search_words (left(word, 1), length(word)) INCLUDE (word);
DROP INDEX search_words_length_idx;

CREATE OR REPLACE FUNCTION search_widenings(query TEXT, forgive_known_words BOOLEAN)
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
                       WHERE terms.budget > 0
                         AND left(sw.word, 1) IN (left(terms.term, 1), substr(terms.term, 2, 1))
                         AND length(sw.word) BETWEEN length(terms.term) - terms.budget
                                                 AND length(terms.term) + terms.budget
                         AND (left(sw.word, 1) = left(terms.term, 1)
                              OR left(sw.word, 2) = substr(terms.term, 2, 1) || left(terms.term, 1))
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

-- The sorts by rating and by year in index order: a page reads its 24 books instead of
-- sorting the catalog (the old indexes put unknown years first, and left popularity, the
-- rating's tie-break, out).
CREATE INDEX books_rating_order_idx
    ON books (average_rating DESC NULLS LAST, ratings_count DESC, id);
DROP INDEX books_rating_idx;
CREATE INDEX books_year_order_idx ON books (year DESC NULLS LAST, id);
DROP INDEX books_year_idx;

-- "Did you mean" among the books a search found (the page shown): the closest of their titles
-- and authors. Over the whole catalog (search_suggestion), the trigram indexes hand a typo
-- thousands of titles to compare at a million books (140 ms); the books found are the close
-- spellings already. search_suggestion stays for a search that found nothing. The threshold
-- is the one `<%` uses by default (pg_trgm.word_similarity_threshold); written as a
-- comparison, it leaves the planner no trigram index to prefer over the books' ids.
CREATE FUNCTION search_suggestion_among(query TEXT, found BIGINT[]) RETURNS TEXT
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT suggestion FROM (
            SELECT regexp_replace(b.title, '\s*\([^()]*\)\s*$', '') AS suggestion,
                   word_similarity(search_fold(query), search_fold(b.title)) AS closeness,
                   b.ratings_count AS popularity
              FROM unnest(found) AS f (id) JOIN books b ON b.id = f.id
            UNION ALL
            SELECT a.name, word_similarity(search_fold(query), search_fold(a.name)),
                   b.ratings_count
              FROM unnest(found) AS f (id)
              JOIN books b ON b.id = f.id
              JOIN book_authors ba ON ba.book_id = b.id
              JOIN authors a ON a.id = ba.author_id
        ) AS candidates
        WHERE closeness >= 0.6
        ORDER BY closeness DESC, popularity DESC
        LIMIT 1
    $$;
