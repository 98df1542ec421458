//! The shop's rules, as plain functions over a database connection and parsed value types.
//! Nothing here knows about HTTP.

pub mod accounts;
pub mod cart;
pub mod catalog;
pub mod money;
pub mod orders;
pub mod overview;
