-- Carts and orders. The constraints are the last guard behind the domain rules.
CREATE TABLE cart_items (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    book_id    BIGINT NOT NULL REFERENCES books (id) ON DELETE CASCADE,
    -- A cart line never holds less than one copy.
    quantity   INTEGER NOT NULL CHECK (quantity >= 1),
    added_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- One line per book: adding the same book again changes this row (an upsert on this key).
    UNIQUE (user_id, book_id)
);

CREATE TABLE orders (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    -- From the checkout form: a double-submitted form finds the first order instead of a second.
    idempotency_key UUID NOT NULL,
    total_cents     BIGINT NOT NULL CHECK (total_cents >= 0),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX orders_user_id_created_at_idx ON orders (user_id, created_at DESC);

CREATE TABLE order_lines (
    order_id         BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    book_id          BIGINT NOT NULL REFERENCES books (id) ON DELETE RESTRICT,
    -- Snapshots taken at purchase: later catalog edits never rewrite an order.
    title            TEXT NOT NULL,
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    quantity         INTEGER NOT NULL CHECK (quantity >= 1),
    PRIMARY KEY (order_id, book_id)
);
CREATE INDEX order_lines_book_id_idx ON order_lines (book_id);
