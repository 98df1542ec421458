//! The built-in programs, one file per area. Each is a plain function over a
//! [`TaskContext`](crate::tasks::TaskContext).
//!
//! They sit above the shop's rules (`domain`: orders, accounts, the catalog they read and
//! change) and the task engine (`tasks`: what a program is, its context, the registry), so
//! neither names them: startup hands [`registry()`] to the engine.

mod backup;
mod basic;
mod import;
mod mail;
mod maintenance;
mod reports;

use std::time::Duration;

use serde_json::Value;

use crate::tasks::{
    Registry,
    ops::OperationError,
    program::{ProgramFunction, ProgramSettings},
    refusal::ParamRefusal,
};

/// Rules across parameters, or about the server, that the parameter schema cannot say: checked
/// by the pages and the API before queueing (so "from after to" or a missing import file is
/// refused at once), and again by the program when it runs (psql queues without asking).
/// `params` are the parameters as the schema check left them. A refusal is the same
/// [`OperationError`] `run_program` gives.
pub fn check_before_queueing(
    function_name: &str,
    params: &Value,
    settings: &ProgramSettings,
) -> Result<(), OperationError> {
    let checked: Result<(), ParamRefusal> = match function_name {
        "sales_report" => reports::check_sales_params(params),
        "import_catalog" => import::check_import_params(params, settings),
        _ => Ok(()),
    };
    Ok(checked?)
}

/// The functions of this build.
pub fn registry() -> Registry {
    Registry::new(all())
}

fn all() -> Vec<ProgramFunction> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_built_in_has_a_schema_from_its_parameter_struct() {
        let registry = registry();
        let schema = |name: &str| json!(registry.get(name).expect(name).params);
        assert_eq!(
            schema("hello_world"),
            json!([{"name": "name", "type": "text", "required": false, "default": "world",
                    "help": "Who to greet.", "max_length": 200}])
        );
        assert_eq!(
            schema("sales_report"),
            json!([
                {"name": "from", "type": "date", "required": true, "help": "First day.", "default_days_ago": 30},
                {"name": "to", "type": "date", "required": true, "help": "Last day.", "default_days_ago": 0},
                {"name": "per", "type": "enum", "required": false, "default": "book",
                 "help": "Group by book or by author.", "choices": ["book", "author"]},
            ])
        );
        assert_eq!(schema("noop"), json!([]));
        for function in registry.functions() {
            for spec in &function.params {
                assert!(
                    !spec.help.is_empty(),
                    "{}.{} has help",
                    function.name,
                    spec.name
                );
            }
        }
    }
}
