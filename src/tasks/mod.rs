//! Background programs: what a program is and sees ([`program`]), the registry of functions
//! compiled into the app, the operations staff and DBAs call ([`ops`]: `get_programs`,
//! `run_program`, `get_task_result`, `register_program` as SQL functions; [`bulk`] actions on
//! many tasks), moving ended tasks out of the engine's way ([`archive`]), read models for the pages ([`views`]; the list's query in [`listing`], the
//! overview's counts in [`stats`]), and the engine that runs tasks on its
//! own actix Arbiter.

pub mod archive;
pub mod bulk;
pub mod engine;
pub mod flow;
pub mod listing;
pub mod ops;
pub mod params;
pub mod program;
pub mod queueing;
pub mod refusal;
pub mod registry;
pub mod schedule;
pub mod stats;
pub mod status;
pub mod table;
pub mod trace;
pub mod views;

pub use program::{TaskContext, TaskError, TaskOutput};
pub use registry::Registry;
