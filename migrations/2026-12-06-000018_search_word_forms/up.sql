-- Why a session ended before its time (its user logged in elsewhere, or the password changed),
-- kept under its token's hash so that the browser still holding the token is told once, on its
-- next page (the row is deleted then). Rows older than a session's lifetime are purged.
CREATE TABLE ended_sessions (
    token_hash BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    reason TEXT NOT NULL CHECK (reason IN ('logged_in_elsewhere', 'password_changed')),
    ended_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ended_sessions_ended_at_idx ON ended_sessions (ended_at);

-- Whether the catalog has the word. A function of its own, so that each look-up is one probe
-- of the primary key (written inline, the planner, guessing 100 query words, hashed the whole
-- dictionary instead), with a cost that says so: the plan's estimate stays near the old one's,
-- far below jit_above_cost (compiling a plan takes far longer than this search).
CREATE FUNCTION search_word_known(candidate TEXT) RETURNS BOOLEAN
    LANGUAGE sql STABLE PARALLEL SAFE STRICT COST 5
    AS $$ SELECT EXISTS (SELECT 1 FROM search_words WHERE word = candidate) $$;

-- Words split or joined differently from the catalog are the same words: "mocking bird" finds
-- "Mockingbird", "halfblood" and "spiderman" find "Half-Blood" and "Spider-Man" (which fold
-- to two words), "handmaids" finds "Handmaid's" ("handmaid s"). These other forms count as
-- typed, not as typos: each query word may also stand for
--   - its neighbour and itself written as one catalog word ("mocking" and "bird" for
--     "mockingbird"; both words take it, so the query stays one AND of word groups), and
--   - two catalog words it can be cut into, each of at least three letters, or a word and "s"
--     (an apostrophe dropped), found next to each other in that order (`<->`): so a word the
--     catalog also knows whole ("halfblood" is in "Halfblood Chronicles") finds the split form
--     too, while a chance cut ("stephen": "step" "hen") matches only where those words stand
--     together.
CREATE OR REPLACE FUNCTION search_queries(query TEXT, forgive_known_words BOOLEAN)
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
