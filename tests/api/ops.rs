//! The task operations (`tasks::ops`, `tasks::bulk`) on their own, against a real database:
//! what each one does, each refusal code it gives, what cancel, retry and delete do to every
//! status, and the audit record written in the same transaction as the change.

use bookstore::ids::{ProgramId, TaskId};
use std::path::PathBuf;

use bookstore::{
    audit::{Actor, AuditContext},
    db::schema::{audit_events, programs, tasks},
    tasks::{
        bulk::{self, BulkAction},
        engine::store::{self, AttemptKey, ClaimRequest, Success},
        ops::{self, OperationError},
        program::ProgramSettings,
        status::TaskStatus::{self, Scheduled},
    },
};
use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection, prelude::*};
use serde_json::{Value, json};

use crate::helpers::fresh_database;

const MISSING: TaskId = TaskId(424_242);
const MISSING_PROGRAM: ProgramId = ProgramId(424_242);

fn connect() -> PgConnection {
    PgConnection::establish(&fresh_database()).expect("connecting")
}

/// A refusal's code and the fields it names: "name_taken: name".
fn refused<T: std::fmt::Debug>(result: Result<T, OperationError>) -> String {
    match result {
        Err(OperationError::Refused { code, fields, .. }) => {
            let fields: Vec<_> = fields.into_keys().collect();
            format!("{code}: {}", fields.join(", "))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn staff() -> AuditContext {
    AuditContext::new(Actor::Staff("boss".into()), Some("192.0.2.7".into()))
}

/// Every audit event after the first `skip`, as "actor: action subject details".
fn events(conn: &mut PgConnection, skip: usize) -> Vec<String> {
    let columns = (
        audit_events::actor,
        audit_events::action,
        audit_events::subject,
        audit_events::details,
    );
    let all: Vec<(String, String, String, Value)> = audit_events::table
        .order(audit_events::id)
        .select(columns)
        .load(conn)
        .unwrap();
    let line = |(actor, action, subject, details)| format!("{actor}: {action} {subject} {details}");
    all.into_iter().skip(skip).map(line).collect()
}

fn event_count(conn: &mut PgConnection) -> usize {
    events(conn, 0).len()
}

/// The tasks' statuses, "deleted" for one gone, separated by spaces.
fn statuses(conn: &mut PgConnection, ids: &[TaskId]) -> String {
    let status = |conn: &mut PgConnection, id: &TaskId| {
        let row = tasks::table.filter(tasks::id.eq(id)).select(tasks::status);
        let status: Option<TaskStatus> = row.first(conn).optional().unwrap();
        status.map_or("deleted", TaskStatus::as_str)
    };
    let all: Vec<_> = ids.iter().map(|id| status(conn, id)).collect();
    all.join(" ")
}

fn cancel_requested(conn: &mut PgConnection, id: TaskId) -> bool {
    let row = tasks::table
        .filter(tasks::id.eq(id))
        .select(tasks::cancel_requested);
    row.first(conn).unwrap()
}

fn program_id(conn: &mut PgConnection, name: &str) -> ProgramId {
    let by_name = programs::table.filter(programs::name.eq(name));
    by_name.select(programs::id).first(conn).unwrap()
}

/// Queues a `noop` task and has worker "w" claim exactly it.
fn running(conn: &mut PgConnection) -> AttemptKey {
    let id = ops::run_program(conn, "noop", None).unwrap();
    let claimed = store::claim(conn, "w", ClaimRequest::new(1), &[])
        .unwrap()
        .0;
    assert_eq!(claimed[0].key.task_id, id, "the only queued task");
    claimed[0].key
}

/// One task in each status, in `TaskStatus::ALL` order.
fn one_of_each(conn: &mut PgConnection) -> [TaskId; 5] {
    let run = running(conn).task_id;
    let key = running(conn);
    let (result, started_at, ended_at) = ("ok".to_owned(), Utc::now(), Utc::now());
    let done = [Success {
        key,
        result,
        result_table: None,
        started_at,
        ended_at,
        limited: false,
        has_dependents: false,
    }];
    store::finish(conn, "w", &done).unwrap();
    let failed = running(conn);
    store::fail(conn, "w", failed, "boom", false, 0).unwrap();
    let cancelled = ops::run_program(conn, "noop", None).unwrap();
    ops::cancel_task(conn, cancelled).unwrap();
    let queued = ops::run_program(conn, "noop", None).unwrap();
    let ids = [queued, run, key.task_id, failed.task_id, cancelled];
    let all = "scheduled running finished error cancelled";
    assert_eq!(statuses(conn, &ids), all);
    ids
}

#[test]
fn a_registered_program_runs_and_both_are_recorded_under_the_actor() {
    let mut conn = connect();
    let program = ops::register_program_as(&mut conn, &staff(), "greet_ann", "hello_world");
    let program = program.unwrap();
    let params = json!({"name": "Ann"});
    let task = ops::run_program_as(&mut conn, &staff(), "greet_ann", Some(&params)).unwrap();

    let listed = ops::get_programs(&mut conn).unwrap();
    let info = listed.into_iter().find(|p| p.id == program).unwrap();
    let shown = format!("{} runs {}", info.name, info.function_name);
    assert_eq!(shown, "greet_ann runs hello_world");
    let last = (info.last_task_id, info.last_status);
    assert_eq!(last, (Some(task), Some(Scheduled)));
    let function = ops::function_of(&mut conn, "greet_ann").unwrap();
    assert_eq!(function.as_deref(), Some("hello_world"));
    assert_eq!(ops::function_of(&mut conn, "nobody").unwrap(), None);

    let result = ops::get_task_result(&mut conn, task).unwrap();
    let what = (result.program.as_str(), result.status, result.attempt);
    assert_eq!(what, ("greet_ann", Scheduled, 0));
    assert_eq!(result.parameters, Some(json!({"name": "Ann"})));

    let expected = [
        r#"staff boss: program.registered program greet_ann {"function":"hello_world"}"#.into(),
        format!(r#"staff boss: task.queued task {task} {{"program":"greet_ann"}}"#),
    ];
    assert_eq!(events(&mut conn, 0), expected);

    // The record is part of the change: a rolled-back registration leaves neither.
    let undone = conn.transaction(|conn| {
        ops::register_program(conn, "greet_bo", "hello_world").unwrap();
        diesel::QueryResult::<()>::Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(undone.is_err());
    assert_eq!(ops::function_of(&mut conn, "greet_bo").unwrap(), None);
    assert_eq!(events(&mut conn, 0), expected);
}

#[test]
fn a_refused_registration_names_its_reason_and_changes_nothing() {
    let mut conn = connect();
    let before: i64 = programs::table.count().get_result(&mut conn).unwrap();

    for bad in ["", "Greet", "9lives", "has space", &"a".repeat(64)] {
        let result = ops::register_program(&mut conn, bad, "hello_world");
        assert_eq!(refused(result), "invalid_name: name", "{bad:?}");
    }
    let result = ops::register_program(&mut conn, "greet", "no_such_function");
    assert_eq!(refused(result), "unknown_function: function_name");
    let result = ops::register_program(&mut conn, "noop", "hello_world");
    assert_eq!(refused(result), "name_taken: name");

    let after: i64 = programs::table.count().get_result(&mut conn).unwrap();
    assert_eq!(after, before);
    assert_eq!(event_count(&mut conn), 0, "a refusal records nothing");
}

#[test]
fn a_refused_run_names_its_reason_and_queues_nothing() {
    let mut conn = connect();

    let result = ops::run_program(&mut conn, "no_such_program", None);
    assert_eq!(refused(result), "program_not_found: program");
    let result = ops::run_program(&mut conn, "hello_world", Some(&json!({"name": 5})));
    assert_eq!(refused(result), "invalid_parameters: name");
    let result = ops::run_program(&mut conn, "hello_world", Some(&json!([1])));
    assert!(refused(result).starts_with("invalid_parameters:"));
    let hello = program_id(&mut conn, "hello_world");
    ops::configure_program(&mut conn, &staff(), hello, None, false).unwrap();
    let disabled = event_count(&mut conn);
    let result = ops::run_program(&mut conn, "hello_world", None);
    assert_eq!(refused(result), "program_disabled: program");

    let tasks: i64 = tasks::table.count().get_result(&mut conn).unwrap();
    assert_eq!((tasks, event_count(&mut conn)), (0, disabled));
    let result = ops::get_task_result(&mut conn, MISSING);
    assert_eq!(refused(result), "task_not_found: ");
    assert_eq!(
        refused(ops::cancel_task(&mut conn, MISSING)),
        "task_not_found: "
    );
}

/// What the pages and the API check before queueing, beyond the schema: the same refusal.
#[test]
fn rules_across_parameters_are_refused_before_queueing() {
    let settings = ProgramSettings {
        import_dir: PathBuf::from("/nonexistent"),
        import_max_bytes: 1024,
        mail: bookstore::mail::Mailer::from_config(&bookstore::config::Config::default()),
        backups: bookstore::backup::BackupSettings::from(&bookstore::config::Config::default()),
    };
    let check =
        |params| bookstore::programs::check_before_queueing("sales_report", &params, &settings);

    let backwards = check(json!({"from": "2026-03-02", "to": "2026-03-01"}));
    assert_eq!(refused(backwards), "invalid_parameters: from");
    check(json!({"from": "2026-03-01", "to": "2026-03-02"})).unwrap();
}

#[test]
fn cancel_ends_a_queued_task_asks_a_running_one_to_stop_and_leaves_ended_ones() {
    let mut conn = connect();
    let ids = one_of_each(&mut conn);
    let [queued, run, ..] = ids;
    let before = event_count(&mut conn);

    let answers = ids.map(|id| {
        ops::cancel_task_as(&mut conn, &staff(), id)
            .unwrap()
            .as_str()
    });

    let after = "cancelled running finished error cancelled";
    assert_eq!(answers.join(" "), after);
    assert_eq!(statuses(&mut conn, &ids), after);
    let result = ops::get_task_result(&mut conn, queued).unwrap();
    let ended = (result.result.as_deref(), result.end_time.is_some());
    assert_eq!(ended, (Some("Cancelled before it started."), true));
    let asked = ids.map(|id| cancel_requested(&mut conn, id));
    assert_eq!(asked, [false, true, false, false, false]);
    let expected = [
        format!("staff boss: task.cancelled task {queued} {{}}"),
        format!(r#"staff boss: task.cancelled task {run} {{"running":true}}"#),
    ];
    assert_eq!(events(&mut conn, before), expected, "only the changes");
}

/// Each bulk action changes exactly the statuses it applies to, says how many it changed (as
/// `bulk_applicable` predicted), and records one event per changed task.
#[test]
fn bulk_actions_change_only_the_statuses_they_apply_to() {
    let afterwards = [
        "cancelled running finished error cancelled",
        "scheduled running finished scheduled scheduled",
        "scheduled running deleted deleted deleted",
    ];
    for (action, after) in BulkAction::ALL.into_iter().zip(afterwards) {
        let mut conn = connect();
        let ids = one_of_each(&mut conn);
        let before = event_count(&mut conn);
        let asked = [&ids[..], &[MISSING]].concat(); // a task gone meanwhile is ignored

        let applicable = bulk::bulk_applicable(&mut conn, action, &asked).unwrap();
        let changed = bulk::bulk(&mut conn, &staff(), action, &asked).unwrap();

        assert_eq!(statuses(&mut conn, &ids), after, "{action:?}");
        assert_eq!(changed as i64, applicable, "{action:?}");
        let recorded = events(&mut conn, before);
        let event = format!("staff boss: {}", action.audit_action().as_str());
        let of_action = recorded
            .iter()
            .filter(|line| line.starts_with(&event))
            .count();
        assert_eq!(
            (recorded.len(), of_action),
            (changed, changed),
            "{action:?}"
        );
    }
}

#[test]
fn a_retried_task_gets_one_more_attempt_and_runs_again() {
    let mut conn = connect();
    let failed = running(&mut conn);
    store::fail(&mut conn, "w", failed, "boom", false, 0).unwrap();

    let retried = bulk::bulk(&mut conn, &staff(), BulkAction::Retry, &[failed.task_id]).unwrap();

    assert_eq!(retried, 1);
    let again = store::claim(&mut conn, "w", ClaimRequest::new(1), &[])
        .unwrap()
        .0;
    let again = (again[0].key.task_id, again[0].key.attempt);
    assert_eq!(again, (failed.task_id, 2));
    let last = events(&mut conn, 0).pop().unwrap();
    let id = failed.task_id;
    assert_eq!(
        last,
        format!(r#"staff boss: task.retried task {id} {{"was":"error"}}"#)
    );
}

#[test]
fn program_settings_take_a_valid_schedule_and_refuse_anything_else() {
    let mut conn = connect();
    let hello = program_id(&mut conn, "hello_world");
    // (schedule, whether its next run is in the future, enabled)
    let settings = |conn: &mut PgConnection| {
        let columns = (programs::schedule, programs::next_run_at, programs::enabled);
        let row = programs::table.find(hello).select(columns);
        let (schedule, next, enabled): (Option<String>, Option<DateTime<Utc>>, bool) =
            row.first(conn).unwrap();
        (schedule, next.is_some_and(|at| at > Utc::now()), enabled)
    };
    let every_15 = (Some("every 15 minutes".to_owned()), true, true);
    let configure = |conn: &mut PgConnection, program, schedule, enabled| {
        ops::configure_program(conn, &staff(), program, schedule, enabled)
    };

    configure(&mut conn, hello, Some("  every 15 minutes "), true).unwrap();
    assert_eq!(settings(&mut conn), every_15);

    for bad in [
        "every fortnight",
        "every 0 minutes",
        "sometimes",
        "61 * * * *",
    ] {
        let result = configure(&mut conn, hello, Some(bad), false);
        assert_eq!(refused(result), "invalid_schedule: schedule", "{bad:?}");
        assert_eq!(settings(&mut conn), every_15, "unchanged by {bad:?}");
    }

    configure(&mut conn, hello, Some("   "), false).unwrap();
    assert_eq!(settings(&mut conn), (None, false, false), "blank clears");
    let result = configure(&mut conn, MISSING_PROGRAM, None, true);
    assert_eq!(refused(result), "program_not_found: ");

    // What changed is recorded, and only that: the same firings in other words are no change.
    configure(&mut conn, hello, Some("0 3 * * *"), false).unwrap();
    configure(&mut conn, hello, Some("daily at 03:00"), true).unwrap();
    let expected = [
        r#"staff boss: program.scheduled program hello_world {"schedule":"every 15 minutes"}"#,
        r#"staff boss: program.scheduled program hello_world {"schedule":""}"#,
        "staff boss: program.disabled program hello_world {}",
        r#"staff boss: program.scheduled program hello_world {"schedule":"0 3 * * *"}"#,
        "staff boss: program.enabled program hello_world {}",
    ];
    assert_eq!(events(&mut conn, 0), expected);
}

#[test]
fn a_paused_program_keeps_its_tasks_queued_until_resumed_and_both_are_recorded() {
    let mut conn = connect();
    let queued = ops::run_program(&mut conn, "noop", None).unwrap();
    let before = event_count(&mut conn);
    let claim = |conn: &mut PgConnection| {
        let claimed = store::claim(conn, "w", ClaimRequest::new(10), &[])
            .unwrap()
            .0;
        claimed.iter().map(|t| t.key.task_id).collect::<Vec<_>>()
    };

    assert!(ops::set_paused(&mut conn, &staff(), "noop", true).unwrap());
    assert_eq!(claim(&mut conn), [], "it waits");
    assert!(ops::set_paused(&mut conn, &staff(), "noop", false).unwrap());
    assert_eq!(claim(&mut conn), [queued]);
    assert!(!ops::set_paused(&mut conn, &staff(), "no_such_program", true).unwrap());

    let expected = [
        "staff boss: program.paused program noop {}",
        "staff boss: program.resumed program noop {}",
    ];
    assert_eq!(events(&mut conn, before), expected);
}
