//! Calls of the engine's hottest functions as statements each connection prepares once.
//!
//! diesel's `sql_query` cannot be cached (its text could be built at run time), so every
//! claim and every finish was parsed, bound and planned afresh as an unnamed statement:
//! 0.05-0.09 ms of a limited program's claim round trip (pgbench, `-M extended` against
//! `-M prepared`), and a limited program's throughput is claims per second. A statement
//! declared here has a fixed text, so diesel keeps it in the connection's statement cache.

/// Declares `$name`, a call of a SQL function with one bind per field, in order:
/// `$before` `$1, $2, ...` `$after`. It loads rows like `sql_query` does
/// (`QueryableByName`). Its fields may borrow for `'a`.
macro_rules! prepared_call {
    (
        $(#[$meta:meta])*
        $name:ident { $($field:ident: $ty:ty => $sql_type:ty),+ $(,)? }
        sql: $before:literal ... $after:literal
    ) => {
        $(#[$meta])*
        pub(super) struct $name<'a> {
            $(pub $field: $ty,)+
        }

        impl diesel::query_builder::QueryId for $name<'_> {
            type QueryId = ();
            // Cached by its SQL text (the same on every call).
            const HAS_STATIC_QUERY_ID: bool = false;
        }

        impl diesel::query_builder::Query for $name<'_> {
            type SqlType = diesel::sql_types::Untyped;
        }

        impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for $name<'_> {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
            ) -> diesel::QueryResult<()> {
                out.push_sql($before);
                let mut first = true;
                $(
                    if !std::mem::take(&mut first) {
                        out.push_sql(", ");
                    }
                    out.push_bind_param::<$sql_type, _>(&self.$field)?;
                )+
                out.push_sql($after);
                Ok(())
            }
        }

        impl<Conn> diesel::RunQueryDsl<Conn> for $name<'_> {}
    };
}

pub(super) use prepared_call;
