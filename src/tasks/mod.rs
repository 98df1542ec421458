//! Background programs: the registry of functions compiled into the app, the SQL operations
//! (`get_programs`, `run_program`, `get_task_result`, `register_program`), and the engine that
//! runs tasks on its own actix Arbiter, exactly once across any number of nodes.

pub mod context;
pub mod engine;
pub mod programs;
pub mod registry;
pub mod schedule;
pub mod store;
pub mod table;
pub mod views;

pub use context::{TaskContext, TaskError, TaskOutput};
pub use registry::Registry;
