//! The functions compiled into the app that programs can run, with their parameter schemas.
//! At start the app writes them to `program_functions` (so `register_program` and
//! `run_program` in SQL know them) and registers a program for each built-in. (Programs can
//! also name SQL functions; `register_program` records those itself.)

use diesel::{prelude::*, upsert::excluded};
use serde_json::json;

use crate::{
    db::schema::{program_functions, programs},
    tasks::{program::ProgramFunction, schedule::Schedule},
};

pub struct Registry {
    functions: Vec<ProgramFunction>,
}

impl Registry {
    /// A registry of the given functions: the built-ins (`programs::registry()`, assembled above
    /// the engine, which never names them), an app embedding the engine, or a test.
    pub fn new(functions: Vec<ProgramFunction>) -> Registry {
        Registry { functions }
    }

    pub fn get(&self, name: &str) -> Option<&ProgramFunction> {
        self.functions.iter().find(|function| function.name == name)
    }

    pub fn functions(&self) -> &[ProgramFunction] {
        &self.functions
    }

    /// Writes the registry to `program_functions` and registers a program for each built-in
    /// function that has none yet. Idempotent, and safe for nodes starting together.
    pub fn sync(&self, conn: &mut PgConnection) -> QueryResult<()> {
        conn.transaction(|conn| {
            for function in &self.functions {
                diesel::insert_into(program_functions::table)
                    .values((
                        program_functions::name.eq(function.name),
                        program_functions::kind.eq("rust"),
                        program_functions::description.eq(function.description),
                        program_functions::parameters.eq(json!(function.params)),
                        program_functions::timeout_seconds
                            .eq(function.timeout.as_secs().max(1) as i32),
                        program_functions::max_attempts.eq(function.max_attempts as i32),
                        program_functions::transactional.eq(function.is_transactional()),
                        program_functions::default_max_running.eq(function
                            .default_max_running
                            .map(|limit| i32::try_from(limit).unwrap_or(i32::MAX))),
                    ))
                    .on_conflict(program_functions::name)
                    .do_update()
                    .set((
                        program_functions::kind.eq("rust"),
                        program_functions::description.eq(excluded(program_functions::description)),
                        program_functions::parameters.eq(excluded(program_functions::parameters)),
                        program_functions::timeout_seconds
                            .eq(excluded(program_functions::timeout_seconds)),
                        program_functions::max_attempts
                            .eq(excluded(program_functions::max_attempts)),
                        program_functions::transactional
                            .eq(excluded(program_functions::transactional)),
                        program_functions::default_max_running
                            .eq(excluded(program_functions::default_max_running)),
                        program_functions::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
                diesel::insert_into(programs::table)
                    .values((
                        programs::name.eq(function.name),
                        programs::function_name.eq(function.name),
                        programs::description.eq(function.description),
                        programs::schedule.eq(function.default_schedule),
                        // The first firing is the schedule's next time, not the first start:
                        // a new shop's staff get the daily digest at 07:00, not at install.
                        programs::next_run_at.eq(function
                            .default_schedule
                            .and_then(|text| Schedule::parse(text).ok())
                            .and_then(|schedule| schedule.next_after(chrono::Utc::now()))),
                        programs::max_running.eq(function
                            .default_max_running
                            .map(|limit| i32::try_from(limit).unwrap_or(i32::MAX))),
                    ))
                    .on_conflict(programs::name)
                    .do_nothing()
                    .execute(conn)?;
            }
            Ok(())
        })
    }
}
