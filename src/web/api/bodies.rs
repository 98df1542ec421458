//! The bodies of the queueing calls, read into the engine's types. JSON's types are serde's
//! to judge (a string for a number is `invalid_json`); here is what they cannot say, each
//! refusal naming its field: a number past what the column holds, options that make no sense
//! together, a list too long for one call. Ranges (priority -100 to 100, a key's length, ...)
//! are the SQL functions' to judge, so the API answers as psql does.

use serde::Deserialize;
use serde_json::Value;

use crate::{
    ids::TaskId,
    tasks::queueing::{ProgramOptions, RunOptions},
    web::api::{ApiError, ErrorCode},
};

/// The most tasks one call may queue (a batch's members included).
pub const MAX_TASKS_PER_CALL: usize = 10_000;

/// `POST /api/v1/tasks`: one task, or with a list of parameters, one task per element.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    program: String,
    /// The task's parameters, an object as the program's schema asks; or a list of such
    /// objects: one task each, queued in one statement (then only `priority` may be given too).
    #[serde(default)]
    parameters: Option<Value>,
    /// -100 to 100, higher runs first; the program's own priority when left out.
    #[serde(default)]
    priority: Option<i64>,
    /// While a task of this program with this key is queued or running, no other is queued:
    /// the call answers 200 with that task.
    #[serde(default)]
    unique_key: Option<String>,
    /// How long the key stays held after its task ends.
    #[serde(default)]
    unique_for_seconds: Option<i64>,
    /// Tasks this one waits for: it is queued once they have all finished.
    #[serde(default)]
    after: Option<Vec<TaskId>>,
}

/// What a `RunBody` asks for.
pub enum RunRequest {
    One {
        program: String,
        parameters: Option<Value>,
        options: RunOptions,
    },
    Many {
        program: String,
        parameters: Vec<Value>,
        priority: Option<i32>,
    },
}

impl RunBody {
    pub fn parse(self) -> Result<RunRequest, ApiError> {
        let priority = self
            .priority
            .map(|p| whole("priority", p, "must be from -100 to 100"))
            .transpose()?;
        let Some(Value::Array(parameters)) = self.parameters else {
            let unique_for = self
                .unique_for_seconds
                .map(|seconds| {
                    chrono::Duration::try_seconds(seconds).ok_or_else(|| {
                        ApiError::invalid_option("unique_for_seconds", "is out of range")
                    })
                })
                .transpose()?;
            let options = RunOptions {
                priority,
                unique_key: self.unique_key,
                unique_for,
                after: self.after.unwrap_or_default(),
            };
            let (program, parameters) = (self.program, self.parameters);
            return Ok(RunRequest::One {
                program,
                parameters,
                options,
            });
        };
        for (field, given) in [
            ("unique_key", self.unique_key.is_some()),
            ("unique_for_seconds", self.unique_for_seconds.is_some()),
            ("after", self.after.is_some()),
        ] {
            if given {
                let problem = "is for one task: give the parameters as one object, not a list";
                return Err(ApiError::invalid_option(field, problem));
            }
        }
        if parameters.is_empty() {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidParameters,
                "An empty list of parameters queues nothing: give at least one.",
            )
            .with_field("parameters"));
        }
        at_most_per_call(parameters.len())?;
        let program = self.program;
        Ok(RunRequest::Many {
            program,
            parameters,
            priority,
        })
    }
}

/// `POST /api/v1/batches`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub program: String,
    pub parameters: Vec<Value>,
    #[serde(default)]
    pub callback: Option<CallbackBody>,
}

/// The task queued once every member of a batch has ended.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackBody {
    pub program: String,
    #[serde(default)]
    pub parameters: Option<Value>,
}

impl BatchBody {
    /// An empty batch is allowed: it is over at once, and its callback is queued.
    pub fn parse(self) -> Result<BatchBody, ApiError> {
        at_most_per_call(self.parameters.len())?;
        Ok(self)
    }
}

/// `PUT /api/v1/programs/{name}/options`: all three, as PUT replaces (one left out takes its
/// default: priority 0, no limit).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionsBody {
    /// -100 to 100; 0 when left out.
    #[serde(default)]
    priority: Option<i64>,
    /// 1 to 10,000 of its tasks claimed at once across the cluster; null: no limit.
    #[serde(default)]
    max_running: Option<i64>,
    /// 1 to 100,000 of its tasks started in any 60 s; null: no limit.
    #[serde(default)]
    per_minute: Option<i64>,
}

impl OptionsBody {
    pub fn parse(self) -> Result<ProgramOptions, ApiError> {
        let limit = |field: &str, value: Option<i64>, range: &str| {
            // The SQL function reads 0 as "remove the limit"; here that is null, said once.
            let message = format!("must be {range}, or null for no limit");
            match value {
                Some(0) => Err(ApiError::invalid_option(field, message)),
                Some(n) => whole(field, n, &message).map(Some),
                None => Ok(None),
            }
        };
        Ok(ProgramOptions {
            priority: whole(
                "priority",
                self.priority.unwrap_or(0),
                "must be from -100 to 100",
            )?,
            max_running: limit("max_running", self.max_running, "from 1 to 10000")?,
            per_minute: limit("per_minute", self.per_minute, "from 1 to 100000")?,
        })
    }
}

/// A number that fits the column's `integer`, or the refusal the SQL function would give.
fn whole(field: &str, value: i64, message: &str) -> Result<i32, ApiError> {
    i32::try_from(value).map_err(|_| ApiError::invalid_option(field, message))
}

fn at_most_per_call(count: usize) -> Result<(), ApiError> {
    if count <= MAX_TASKS_PER_CALL {
        return Ok(());
    }
    let message =
        format!("at most {MAX_TASKS_PER_CALL} tasks in one call ({count} given); split the list");
    Err(ApiError::bad_request(ErrorCode::TooManyTasks, message).with_field("parameters"))
}
