//! The built-in programs, one file per area. Each is a plain function over a [`TaskContext`].

mod basic;
mod import;
mod maintenance;
mod reports;

use std::time::Duration;

use crate::tasks::program::ProgramFunction;

pub fn all() -> Vec<ProgramFunction> {
    let minutes = |m: u64| Duration::from_secs(m * 60);
    vec![
        basic::hello_world(),
        basic::noop(),
        basic::demo_long(),
        basic::flaky(),
        maintenance::purge_expired_sessions(minutes(5)),
        maintenance::prune_tasks(minutes(30)),
        reports::sales_report(minutes(10)),
        reports::low_stock(minutes(5)),
        import::import_catalog(minutes(60)),
    ]
}
