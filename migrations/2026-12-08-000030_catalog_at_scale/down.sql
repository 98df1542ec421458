DROP FUNCTION search_suggestion_among(TEXT, BIGINT[]);

CREATE INDEX books_year_idx ON books (year, id);
DROP INDEX books_year_order_idx;
CREATE INDEX books_rating_idx ON books (average_rating DESC NULLS LAST, id);
DROP INDEX books_rating_order_idx;

-- search_widenings as migration 000012 defined it: every word of about the same length.
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
CREATE INDEX search_words_length_idx ON search_words (length(word)) INCLUDE (word);
DROP INDEX search_words_initial_idx;
