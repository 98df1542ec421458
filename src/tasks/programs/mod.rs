//! The built-in programs, one file per area. Each is a plain function over a [`TaskContext`].

mod backup;
mod basic;
mod import;
mod mail;
mod maintenance;
mod reports;

use std::time::Duration;

use serde_json::Value;

use crate::tasks::{
    program::{ProgramFunction, ProgramSettings},
    refusal::ParamRefusal,
};

/// Rules across parameters, or about the server, that the parameter schema cannot say: checked
/// by the pages and the API before queueing (so "from after to" or a missing import file is
/// refused at once), and again by the program when it runs (psql queues without asking).
/// `params` are the parameters as the schema check left them.
pub fn check_before_queueing(
    function_name: &str,
    params: &Value,
    settings: &ProgramSettings,
) -> Result<(), ParamRefusal> {
    match function_name {
        "sales_report" => reports::check_sales_params(params),
        "import_catalog" => import::check_import_params(params, settings),
        _ => Ok(()),
    }
}

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
        mail::send_mail(minutes(2)),
        mail::low_stock_digest(minutes(5)),
        backup::backup(minutes(60)),
    ]
}
