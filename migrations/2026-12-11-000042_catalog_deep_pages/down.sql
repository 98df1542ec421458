-- The sort indexes without `hidden`, and search_queries without any_word.
CREATE INDEX books_popularity_idx_without_hidden ON books (ratings_count DESC, id);
DROP INDEX books_popularity_idx;
ALTER INDEX books_popularity_idx_without_hidden RENAME TO books_popularity_idx;
CREATE INDEX books_title_id_idx_without_hidden ON books (title, id);
DROP INDEX books_title_id_idx;
ALTER INDEX books_title_id_idx_without_hidden RENAME TO books_title_id_idx;
CREATE INDEX books_price_idx_without_hidden ON books (price_cents, id);
DROP INDEX books_price_idx;
ALTER INDEX books_price_idx_without_hidden RENAME TO books_price_idx;
CREATE INDEX books_rating_order_idx_without_hidden ON books (average_rating DESC NULLS LAST, ratings_count DESC, id);
DROP INDEX books_rating_order_idx;
ALTER INDEX books_rating_order_idx_without_hidden RENAME TO books_rating_order_idx;
CREATE INDEX books_year_order_idx_without_hidden ON books (year DESC NULLS LAST, id);
DROP INDEX books_year_order_idx;
ALTER INDEX books_year_order_idx_without_hidden RENAME TO books_year_order_idx;
CREATE INDEX books_created_at_idx_without_hidden ON books (created_at DESC, id DESC);
DROP INDEX books_created_at_idx;
ALTER INDEX books_created_at_idx_without_hidden RENAME TO books_created_at_idx;

DROP FUNCTION search_queries(TEXT, BOOLEAN);
CREATE FUNCTION search_queries(query TEXT, forgive_known_words BOOLEAN)
    RETURNS TABLE (matching tsquery, exact tsquery, title_key TEXT)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        WITH typed AS (
            -- Each word where it was typed (a repeated word once per place).
            SELECT t.lexeme AS term, p.pos
              FROM unnest(search_words_of(query)) AS t, unnest(t.positions) AS p(pos)
        ),
        terms AS (
            SELECT DISTINCT typed.term, search_word_known(typed.term) AS known FROM typed
        ),
        joined AS (
            SELECT a.term AS first_term, b.term AS second_term, a.term || b.term AS word
              FROM typed a JOIN typed b ON b.pos = a.pos + 1
             WHERE search_word_known(a.term || b.term)
        ),
        forms AS (
            SELECT terms.term, quote_literal(terms.term) AS form FROM terms WHERE terms.known
            UNION
            SELECT joined.first_term, quote_literal(joined.word) FROM joined
            UNION
            SELECT joined.second_term, quote_literal(joined.word) FROM joined
            UNION
            SELECT terms.term, '(' || quote_literal(left(terms.term, cut))
                               || ' <-> ' || quote_literal(substr(terms.term, cut + 1)) || ')'
              -- Constant bounds keep the row estimate small (the cut stays inside the word).
              FROM terms, generate_series(3, 40) AS cut
             WHERE cut < length(terms.term)
               AND (length(terms.term) - cut >= 3 OR substr(terms.term, cut + 1) = 's')
               AND search_word_known(left(terms.term, cut))
               AND search_word_known(substr(terms.term, cut + 1))
        ),
        alternatives AS (
            SELECT forms.term, forms.form, true AS as_typed FROM forms
            UNION
            SELECT w.term, quote_literal(w.word), w.distance = 0
              FROM search_widenings(query, forgive_known_words) AS w
        ),
        widened AS (
            SELECT terms.term,
                   string_agg(a.form, ' | ') AS any_form,
                   string_agg(a.form, ' | ') FILTER (WHERE a.as_typed) AS typed_forms
              FROM terms
              LEFT JOIN alternatives a ON a.term = terms.term
             GROUP BY terms.term
        )
        SELECT CASE WHEN bool_and(any_form IS NOT NULL)
                    THEN string_agg('(' || any_form || ')', ' & ')::tsquery END,
               CASE WHEN bool_and(typed_forms IS NOT NULL)
                    THEN string_agg('(' || typed_forms || ')', ' & ')::tsquery END,
               search_title_key(query)
          FROM widened
        HAVING count(*) > 0
    $$;
