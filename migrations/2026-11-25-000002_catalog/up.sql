-- The catalog: books, their authors in order, and what search needs.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Lower-cased, accent-free text for search ("Les Misérables" is found by "miserables").
-- unaccent() itself is only STABLE (its dictionary could change), so indexes need this
-- IMMUTABLE wrapper with the dictionary named explicitly.
CREATE FUNCTION search_fold(txt TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, txt)) $$;

CREATE TABLE authors (
    id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (char_length(btrim(name)) BETWEEN 1 AND 200)
);
CREATE INDEX authors_name_search_idx ON authors USING gin (search_fold(name) gin_trgm_ops);

CREATE TABLE books (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title        TEXT NOT NULL CHECK (char_length(btrim(title)) BETWEEN 1 AND 500),
    -- Negative years are BC (Homer); NULL when unknown.
    year         INTEGER CHECK (year BETWEEN -5000 AND 3000),
    isbn         TEXT UNIQUE CHECK (isbn ~ '^[0-9]{9}[0-9X]$|^[0-9]{13}$'),
    language     TEXT CHECK (char_length(language) BETWEEN 1 AND 16),
    description  TEXT NOT NULL DEFAULT '',
    -- Money is integer cents everywhere; never a float.
    price_cents  INTEGER NOT NULL CHECK (price_cents >= 0),
    stock        INTEGER NOT NULL CHECK (stock >= 0),
    -- Key of the row in the goodbooks-10k data set, so seeding and imports upsert, not duplicate.
    goodreads_id BIGINT UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX books_title_search_idx ON books USING gin (search_fold(title) gin_trgm_ops);
CREATE INDEX books_title_sort_idx ON books (lower(title), id);
CREATE INDEX books_price_idx ON books (price_cents, id);
CREATE INDEX books_year_idx ON books (year, id);
CREATE INDEX books_created_at_idx ON books (created_at DESC, id DESC);

CREATE TABLE book_authors (
    book_id   BIGINT NOT NULL REFERENCES books (id) ON DELETE CASCADE,
    author_id BIGINT NOT NULL REFERENCES authors (id) ON DELETE RESTRICT,
    -- 0 is the first-named author; order matters on the cover.
    position  SMALLINT NOT NULL CHECK (position >= 0),
    PRIMARY KEY (book_id, author_id),
    UNIQUE (book_id, position)
);
CREATE INDEX book_authors_author_id_idx ON book_authors (author_id);
