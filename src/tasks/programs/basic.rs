//! Small programs: a greeting, a no-op (for benchmarks), a long one with progress, a flaky one.

use std::time::Duration;

use crate::tasks::{
    TaskContext, TaskError, TaskOutput,
    program::{ParamSpec, ProgramFn, ProgramFunction},
};

pub fn hello_world() -> ProgramFunction {
    ProgramFunction {
        name: "hello_world",
        description: "Says hello. NULL parameters are fine.",
        params: vec![ParamSpec::text("name", "Who to greet.").default("world")],
        timeout: Duration::from_secs(30),
        max_attempts: 3,
        default_schedule: None,
        run: ProgramFn::Plain(|ctx| {
            let name = ctx.text("name").unwrap_or_else(|| "world".to_owned());
            Ok(TaskOutput::Text(format!("Hello, {name}!")))
        }),
    }
}

pub fn noop() -> ProgramFunction {
    ProgramFunction {
        name: "noop",
        description: "Does nothing; measures the engine's own cost.",
        params: vec![],
        timeout: Duration::from_secs(30),
        max_attempts: 1,
        default_schedule: None,
        run: ProgramFn::Plain(|_| Ok(TaskOutput::Text("ok".into()))),
    }
}

pub fn demo_long() -> ProgramFunction {
    ProgramFunction {
        name: "demo_long",
        description: "Works for a while in steps, reporting progress; honours cancel.",
        params: vec![
            ParamSpec::int("seconds", "How long to work.")
                .default(30)
                .range(1, 3600),
            ParamSpec::int("steps", "Steps to report progress in.")
                .default(100)
                .range(1, 10_000),
        ],
        timeout: Duration::from_secs(3700),
        max_attempts: 3,
        default_schedule: None,
        run: ProgramFn::Plain(|ctx| {
            let seconds = ctx.int("seconds").unwrap_or(30).max(1) as u64;
            let steps = ctx.int("steps").unwrap_or(100).max(1) as u64;
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

pub fn flaky() -> ProgramFunction {
    ProgramFunction {
        name: "flaky",
        description: "Fails with a given probability (or for its first attempts), to show retries.",
        params: vec![
            ParamSpec::int("failure_percent", "Chance that an attempt fails.")
                .default(50)
                .range(0, 100),
            ParamSpec::int(
                "fail_first",
                "Attempts that always fail before chance applies.",
            )
            .default(0)
            .range(0, 100),
            ParamSpec::bool("panic", "Fail by panicking instead of returning an error.")
                .default(false),
        ],
        timeout: Duration::from_secs(30),
        max_attempts: 3,
        default_schedule: None,
        run: ProgramFn::Plain(run_flaky),
    }
}

fn run_flaky(ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
    let attempt = ctx.attempt() as i64;
    let fail = |message: String| {
        if ctx.bool("panic").unwrap_or(false) {
            panic!("{message}");
        }
        Err(TaskError::failed(message))
    };
    if attempt <= ctx.int("fail_first").unwrap_or(0) {
        return fail(format!("failing on purpose (attempt {attempt})"));
    }
    let percent = ctx.int("failure_percent").unwrap_or(50);
    // uuid v4 is 122 random bits from the OS: plenty for a die roll.
    let roll = (uuid::Uuid::new_v4().as_u128() % 100) as i64;
    if roll < percent {
        return fail(format!("unlucky roll {roll} < {percent}"));
    }
    Ok(TaskOutput::Text(format!(
        "Succeeded on attempt {attempt} (roll {roll})."
    )))
}
