//! Small programs: a greeting, a no-op (for benchmarks), a long one with progress, a flaky one.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::tasks::{
    TaskContext, TaskError, TaskOutput,
    params::specs_of,
    program::{ProgramFn, ProgramFunction},
};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HelloParams {
    /// Who to greet.
    #[serde(default = "world")]
    #[schemars(length(max = 200))]
    name: String,
}

fn world() -> String {
    "world".to_owned()
}

pub fn hello_world() -> ProgramFunction {
    ProgramFunction {
        name: "hello_world",
        description: "Says hello. NULL parameters are fine.",
        params: specs_of::<HelloParams>(),
        timeout: Duration::from_secs(30),
        max_attempts: 3,
        default_schedule: None,
        default_max_running: None,
        run: ProgramFn::Plain(|ctx| {
            let HelloParams { name } = ctx.params()?;
            Ok(TaskOutput::Text(format!("Hello, {name}!")))
        }),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoParams {}

pub fn noop() -> ProgramFunction {
    ProgramFunction {
        name: "noop",
        description: "Does nothing; measures the engine's own cost.",
        params: specs_of::<NoParams>(),
        timeout: Duration::from_secs(30),
        max_attempts: 1,
        default_schedule: None,
        default_max_running: None,
        run: ProgramFn::Plain(|_| Ok(TaskOutput::Text("ok".into()))),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DemoLongParams {
    /// How long to work.
    #[serde(default = "thirty")]
    #[schemars(range(min = 1, max = 3600))]
    seconds: u64,
    /// Steps to report progress in.
    #[serde(default = "hundred")]
    #[schemars(range(min = 1, max = 10_000))]
    steps: u64,
}

fn thirty() -> u64 {
    30
}

fn hundred() -> u64 {
    100
}

pub fn demo_long() -> ProgramFunction {
    ProgramFunction {
        name: "demo_long",
        description: "Works for a while in steps, reporting progress; honours cancel.",
        params: specs_of::<DemoLongParams>(),
        timeout: Duration::from_secs(3700),
        max_attempts: 3,
        default_schedule: None,
        default_max_running: None,
        run: ProgramFn::Plain(|ctx| {
            let DemoLongParams { seconds, steps } = ctx.params()?;
            let (seconds, steps) = (seconds.max(1), steps.max(1));
            let step = Duration::from_millis(seconds * 1000 / steps);
            for done in 0..steps {
                ctx.progress(done, steps, &format!("step {done} of {steps}"))?;
                ctx.sleep(step)?;
            }
            ctx.progress(steps, steps, "done")?;
            Ok(TaskOutput::Text(format!(
                "Worked {seconds} s in {steps} steps."
            )))
        }),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FlakyParams {
    /// Chance that an attempt fails.
    #[serde(default = "fifty")]
    #[schemars(range(min = 0, max = 100))]
    failure_percent: u64,
    /// Attempts that always fail before chance applies.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    fail_first: u64,
    /// Fail by panicking instead of returning an error.
    #[serde(default)]
    panic: bool,
}

fn fifty() -> u64 {
    50
}

pub fn flaky() -> ProgramFunction {
    ProgramFunction {
        name: "flaky",
        description: "Fails with a given probability (or for its first attempts), to show retries.",
        params: specs_of::<FlakyParams>(),
        timeout: Duration::from_secs(30),
        max_attempts: 3,
        default_schedule: None,
        default_max_running: None,
        run: ProgramFn::Plain(run_flaky),
    }
}

fn run_flaky(ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
    let params: FlakyParams = ctx.params()?;
    let attempt = ctx.attempt().max(0) as u64;
    let fail = |message: String| {
        if params.panic {
            panic!("{message}");
        }
        Err(TaskError::failed(message))
    };
    if attempt <= params.fail_first {
        return fail(format!("failing on purpose (attempt {attempt})"));
    }
    // uuid v4 is 122 random bits from the OS: plenty for a die roll.
    let roll = (uuid::Uuid::new_v4().as_u128() % 100) as u64;
    if roll < params.failure_percent {
        return fail(format!("unlucky roll {roll} < {}", params.failure_percent));
    }
    Ok(TaskOutput::Text(format!(
        "Succeeded on attempt {attempt} (roll {roll})."
    )))
}
