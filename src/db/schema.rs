// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "tsvector", schema = "pg_catalog"))]
    pub struct Tsvector;
}

diesel::table! {
    api_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        name -> Text,
        token_hash -> Text,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        display_prefix -> Nullable<Text>,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Int8,
        at -> Timestamptz,
        actor -> Text,
        action -> Text,
        subject -> Text,
        details -> Jsonb,
        address -> Nullable<Text>,
    }
}

diesel::table! {
    authors (id) {
        id -> Int8,
        name -> Text,
    }
}

diesel::table! {
    book_authors (book_id, author_id) {
        book_id -> Int8,
        author_id -> Int8,
        position -> Int2,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Tsvector;

    books (id) {
        id -> Int8,
        title -> Text,
        year -> Nullable<Int4>,
        isbn -> Nullable<Text>,
        language -> Nullable<Text>,
        description -> Text,
        price_cents -> Int4,
        stock -> Int4,
        goodreads_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        ratings_count -> Int4,
        average_rating -> Nullable<Float4>,
        hidden -> Bool,
        search_doc -> Tsvector,
        title_key -> Text,
    }
}

diesel::table! {
    cart_items (id) {
        id -> Int8,
        user_id -> Int8,
        book_id -> Int8,
        quantity -> Int4,
        added_at -> Timestamptz,
    }
}

diesel::table! {
    email_confirmations (id) {
        id -> Int8,
        user_id -> Int8,
        email -> Text,
        token_hash -> Nullable<Bytea>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    ended_sessions (token_hash) {
        token_hash -> Bytea,
        reason -> Text,
        ended_at -> Timestamptz,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> Int4,
        window_started_at -> Timestamptz,
        last_failure_at -> Timestamptz,
    }
}

diesel::table! {
    mails (id) {
        id -> Int8,
        kind -> Text,
        recipient -> Text,
        user_id -> Nullable<Int8>,
        subject -> Text,
        data -> Jsonb,
        message_id -> Text,
        task_id -> Nullable<Int8>,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    order_lines (order_id, book_id) {
        order_id -> Int8,
        book_id -> Int8,
        title -> Text,
        unit_price_cents -> Int4,
        quantity -> Int4,
    }
}

diesel::table! {
    orders (id) {
        id -> Int8,
        user_id -> Int8,
        idempotency_key -> Uuid,
        total_cents -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    password_resets (token_hash) {
        token_hash -> Bytea,
        user_id -> Int8,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    program_functions (name) {
        name -> Text,
        description -> Text,
        parameters -> Jsonb,
        timeout_seconds -> Int4,
        max_attempts -> Int4,
        updated_at -> Timestamptz,
        kind -> Text,
        transactional -> Bool,
        default_max_running -> Nullable<Int4>,
    }
}

diesel::table! {
    programs (id) {
        id -> Int8,
        name -> Text,
        function_name -> Text,
        description -> Text,
        created_at -> Timestamptz,
        enabled -> Bool,
        schedule -> Nullable<Text>,
        next_run_at -> Nullable<Timestamptz>,
        paused -> Bool,
        priority -> Int4,
        max_running -> Nullable<Int4>,
        per_minute -> Nullable<Int4>,
    }
}

diesel::table! {
    search_words (word) {
        word -> Text,
    }
}

diesel::table! {
    sessions (token_hash) {
        user_id -> Nullable<Int8>,
        state -> Jsonb,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        expires_at -> Timestamptz,
        token_hash -> Bytea,
    }
}

diesel::table! {
    task_batches (id) {
        id -> Int8,
        size -> Int4,
        finished -> Int4,
        failed -> Int4,
        callback_program_id -> Nullable<Int8>,
        callback_parameters -> Nullable<Jsonb>,
        callback_task_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        created_by -> Nullable<Text>,
        callback_error -> Nullable<Text>,
    }
}

diesel::table! {
    task_dependencies (upstream_id, task_id) {
        task_id -> Int8,
        upstream_id -> Int8,
    }
}

diesel::table! {
    task_rate_starts (id) {
        id -> Int8,
        program_id -> Int8,
        started_at -> Timestamptz,
    }
}

diesel::table! {
    tasks (id, archived) {
        id -> Int8,
        program_id -> Int8,
        parameters -> Nullable<Jsonb>,
        status -> Text,
        created_at -> Timestamptz,
        run_after -> Timestamptz,
        start_time -> Nullable<Timestamptz>,
        end_time -> Nullable<Timestamptz>,
        result -> Nullable<Text>,
        attempt -> Int4,
        worker_id -> Nullable<Text>,
        heartbeat_at -> Nullable<Timestamptz>,
        max_attempts -> Int4,
        timeout_seconds -> Int4,
        cancel_requested -> Bool,
        progress_done -> Nullable<Int8>,
        progress_total -> Nullable<Int8>,
        progress_message -> Nullable<Text>,
        result_table -> Nullable<Jsonb>,
        attempts -> Jsonb,
        queued_by -> Nullable<Text>,
        waiting -> Bool,
        priority -> Int4,
        limited -> Bool,
        unique_key -> Nullable<Text>,
        unique_for -> Nullable<Interval>,
        unique_released -> Bool,
        upstream_left -> Int4,
        has_dependents -> Bool,
        batch_id -> Nullable<Int8>,
        traceparent -> Nullable<Text>,
        archived -> Bool,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        login -> Text,
        display_name -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> Timestamptz,
        email -> Nullable<Text>,
    }
}

diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(book_authors -> authors (author_id));
diesel::joinable!(book_authors -> books (book_id));
diesel::joinable!(cart_items -> books (book_id));
diesel::joinable!(cart_items -> users (user_id));
diesel::joinable!(email_confirmations -> users (user_id));
diesel::joinable!(mails -> users (user_id));
diesel::joinable!(order_lines -> books (book_id));
diesel::joinable!(order_lines -> orders (order_id));
diesel::joinable!(orders -> users (user_id));
diesel::joinable!(password_resets -> users (user_id));
diesel::joinable!(programs -> program_functions (function_name));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(task_batches -> programs (callback_program_id));
diesel::joinable!(task_rate_starts -> programs (program_id));
diesel::joinable!(tasks -> programs (program_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_tokens,
    app_secrets,
    audit_events,
    authors,
    book_authors,
    books,
    cart_items,
    email_confirmations,
    ended_sessions,
    login_throttle,
    mails,
    order_lines,
    orders,
    password_resets,
    program_functions,
    programs,
    search_words,
    sessions,
    task_batches,
    task_dependencies,
    task_rate_starts,
    tasks,
    users,
);
