DROP TABLE ended_sessions;

-- search_queries as migration 000012 defined it.
CREATE OR REPLACE FUNCTION search_queries(query TEXT, forgive_known_words BOOLEAN)
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
DROP FUNCTION search_word_known(TEXT);
