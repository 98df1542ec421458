//! The shop's rules, as plain functions over a database connection and parsed value types.
//! Nothing here knows about HTTP.

pub mod accounts;
pub mod audit;
pub mod cart;
pub mod catalog;
pub mod money;
pub mod orders;
pub mod overview;

/// "  Mary   GrandPré " -> "Mary GrandPré": how every typed or imported name is cleaned.
pub fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
