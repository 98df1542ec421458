//! "Did you mean": the closest title or author name to what was typed, offered when the
//! words were not all found as typed. The closeness is trigram word similarity (pg_trgm), in
//! SQL (`search_suggestion_among`, `search_suggestion`, migrations 000012 and 000030).

use diesel::{
    dsl::sql,
    prelude::*,
    sql_types::{Array, BigInt, Bool, Nullable, Text},
};

use crate::{db::schema::books, ids::BookId};

/// How many of the books matching any word a suggestion is looked for among: the most
/// popular of them (the books people mean), out of at most `ANY_WORD_READ` read.
const ANY_WORD_CANDIDATES: usize = 24;
const ANY_WORD_READ: i64 = 2_000;

/// Among the books a search shows (they are the close spellings already).
pub fn among(conn: &mut PgConnection, text: &str, shown: &[BookId]) -> QueryResult<Option<String>> {
    let found: Suggestion =
        diesel::sql_query("SELECT search_suggestion_among($1, $2) AS suggestion")
            .bind::<Text, _>(text)
            .bind::<Array<BigInt>, _>(shown.iter().map(|id| id.0).collect::<Vec<i64>>())
            .get_result(conn)?;
    Ok(found.unless_typed(text))
}

/// For a search that found nothing, even with every word widened. `any_word` (from
/// `search_queries`) finds the books with any of the words: when some words match ("rowling"
/// of "jk rowling", "jk" being too short to forgive), the most popular of those books are the
/// ones meant, so the suggestion is looked for among them first. Only when that finds nothing
/// close does the whole catalog's trigram index answer, which at a million books compares the
/// query with most titles (their common trigrams: "ing", "the").
pub fn for_nothing_found(
    conn: &mut PgConnection,
    text: &str,
    any_word: Option<&str>,
) -> QueryResult<Option<String>> {
    if let Some(any_word) = any_word {
        let mut candidates: Vec<(BookId, i32)> = books::table
            .filter(books::hidden.eq(false))
            .filter(
                sql::<Bool>("books.search_doc @@ CAST(")
                    .bind::<Text, _>(any_word)
                    .sql(" AS tsquery)"),
            )
            .select((books::id, books::ratings_count))
            .limit(ANY_WORD_READ)
            .load(conn)?;
        candidates.sort_by_key(|&(id, popularity)| (std::cmp::Reverse(popularity), id));
        let most_popular: Vec<BookId> = candidates
            .into_iter()
            .take(ANY_WORD_CANDIDATES)
            .map(|(id, _)| id)
            .collect();
        if !most_popular.is_empty()
            && let Some(found) = among(conn, text, &most_popular)?
        {
            return Ok(Some(found));
        }
    }
    let found: Suggestion = diesel::sql_query("SELECT search_suggestion($1) AS suggestion")
        .bind::<Text, _>(text)
        .get_result(conn)?;
    Ok(found.unless_typed(text))
}

#[derive(QueryableByName)]
struct Suggestion {
    #[diesel(sql_type = Nullable<Text>)]
    suggestion: Option<String>,
}

impl Suggestion {
    /// What was typed is no suggestion.
    fn unless_typed(self, text: &str) -> Option<String> {
        self.suggestion
            .filter(|suggestion| !suggestion.eq_ignore_ascii_case(text))
    }
}
