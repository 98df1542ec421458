//! Story tests: the real app on a random port, a real PostgreSQL (one throwaway cluster per
//! run, one fresh database per test), driven over HTTP.

mod account_page;
mod accounts;
mod api_v3;
mod audit;
mod audit_records;
mod bad_input;
mod browser;
mod cart;
mod catalog;
mod console;
mod dashboard;
mod database;
mod engine_flows;
mod engine_losses;
mod engine_outage;
mod engine_store;
mod engine_v3;
mod helpers;
mod imports;
mod login_throttle;
mod looks;
mod ops;
mod orders;
mod outage;
mod pages;
mod pgbouncer;
mod process;
mod search;
mod sessions;
mod sql_programs;
mod staff_browser;
mod staff_console;
mod staff_engine_v3;
mod tasks;
mod tokens;
