//! The functions compiled into the app that programs can run, with their parameter schemas.
//! At start the app writes them to `program_functions` (so `register_program` and
//! `run_program` in SQL know them) and registers a program for each built-in.

use std::time::Duration;

use diesel::{prelude::*, upsert::excluded};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    db::schema::{program_functions, programs},
    tasks::{TaskContext, TaskError, TaskOutput, programs as builtin},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    Text,
    Int,
    Bool,
    Date,
    Enum,
}

/// One parameter of a program, as the run form and `task_parameters_check` see it.
#[derive(Debug, Clone, Serialize)]
pub struct ParamSpec {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: ParamKind,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    pub help: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

impl ParamSpec {
    fn new(name: &'static str, kind: ParamKind, help: &'static str) -> ParamSpec {
        ParamSpec {
            name,
            kind,
            required: false,
            default: None,
            help,
            choices: Vec::new(),
            min: None,
            max: None,
        }
    }

    pub fn text(name: &'static str, help: &'static str) -> ParamSpec {
        ParamSpec::new(name, ParamKind::Text, help)
    }

    pub fn int(name: &'static str, help: &'static str) -> ParamSpec {
        ParamSpec::new(name, ParamKind::Int, help)
    }

    pub fn bool(name: &'static str, help: &'static str) -> ParamSpec {
        ParamSpec::new(name, ParamKind::Bool, help)
    }

    pub fn date(name: &'static str, help: &'static str) -> ParamSpec {
        ParamSpec::new(name, ParamKind::Date, help)
    }

    pub fn choice(name: &'static str, choices: &[&'static str], help: &'static str) -> ParamSpec {
        ParamSpec {
            choices: choices.to_vec(),
            ..ParamSpec::new(name, ParamKind::Enum, help)
        }
    }

    pub fn required(mut self) -> ParamSpec {
        self.required = true;
        self
    }

    pub fn default(mut self, value: impl Into<Value>) -> ParamSpec {
        self.default = Some(value.into());
        self
    }

    pub fn range(mut self, min: i64, max: i64) -> ParamSpec {
        self.min = Some(min);
        self.max = Some(max);
        self
    }
}

pub type ProgramFn = fn(&TaskContext) -> Result<TaskOutput, TaskError>;

/// A Rust function that programs can name.
pub struct ProgramFunction {
    pub name: &'static str,
    pub description: &'static str,
    pub params: Vec<ParamSpec>,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Registered at start as a program of the same name, with this schedule.
    pub default_schedule: Option<&'static str>,
    pub run: ProgramFn,
}

pub struct Registry {
    functions: Vec<ProgramFunction>,
}

impl Registry {
    /// The functions of this build.
    pub fn builtin() -> Registry {
        Registry {
            functions: builtin::all(),
        }
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
                        program_functions::description.eq(function.description),
                        program_functions::parameters.eq(json!(function.params)),
                        program_functions::timeout_seconds
                            .eq(function.timeout.as_secs().max(1) as i32),
                        program_functions::max_attempts.eq(function.max_attempts as i32),
                    ))
                    .on_conflict(program_functions::name)
                    .do_update()
                    .set((
                        program_functions::description.eq(excluded(program_functions::description)),
                        program_functions::parameters.eq(excluded(program_functions::parameters)),
                        program_functions::timeout_seconds
                            .eq(excluded(program_functions::timeout_seconds)),
                        program_functions::max_attempts
                            .eq(excluded(program_functions::max_attempts)),
                        program_functions::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
                diesel::insert_into(programs::table)
                    .values((
                        programs::name.eq(function.name),
                        programs::function_name.eq(function.name),
                        programs::description.eq(function.description),
                        programs::schedule.eq(function.default_schedule),
                        programs::next_run_at
                            .eq(function.default_schedule.map(|_| chrono::Utc::now())),
                    ))
                    .on_conflict(programs::name)
                    .do_nothing()
                    .execute(conn)?;
            }
            Ok(())
        })
    }
}
