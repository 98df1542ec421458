//! A program's own page: what it runs, its schedule and state, and its engine options (the
//! default priority of its tasks, how many may run at once across the cluster, how many may
//! start a minute), which staff change here. The change and its audit record are
//! `set_program_options`, in SQL.

use actix_session::Session;
use actix_web::{FromRequest, HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::{
    tasks::{
        ops::{OperationError, ProgramInfo},
        queueing::{self, ProgramOptions},
    },
    web::{
        AppState,
        auth::Staff,
        csrf::{self, CsrfForm},
        engine_options::{OptionsInput, rate_limit, running_limit},
        error::{WebError, html, see_other},
        flash,
        forms::FieldErrors,
        layout::Layout,
        routes::admin_programs::find_program,
        with_conn,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/program.html")]
pub struct ProgramPage {
    layout: Layout,
    csrf_token: String,
    program: ProgramInfo,
    options: OptionsInput,
    errors: FieldErrors,
}

/// An input of the options form: (name, label, value, help, min, max).
type OptionField<'a> = (&'static str, &'static str, &'a str, &'static str, i32, i32);

impl ProgramPage {
    fn new(layout: Layout, session: &Session, program: ProgramInfo) -> ProgramPage {
        let options = OptionsInput::of(ProgramOptions {
            priority: program.priority,
            max_running: program.max_running,
            per_minute: program.per_minute,
        });
        ProgramPage {
            layout,
            csrf_token: csrf::token(session),
            program,
            options,
            errors: FieldErrors::default(),
        }
    }

    fn fields(&self) -> [OptionField<'_>; 3] {
        [
            (
                "priority",
                "Priority",
                &self.options.priority,
                "Its tasks' default priority, from -100 to 100: higher runs first. A run can set its own.",
                -100,
                100,
            ),
            (
                "max_running",
                "At most running at once",
                &self.options.max_running,
                "How many of its tasks may run at the same time on all nodes together (1 means one at a time). Empty: no limit.",
                1,
                10_000,
            ),
            (
                "per_minute",
                "Starts a minute",
                &self.options.per_minute,
                "How many of its tasks may start in any 60 seconds, on all nodes together. Empty: no limit.",
                1,
                100_000,
            ),
        ]
    }
}

/// `GET /admin/programs/{name}`
pub async fn show(
    state: web::Data<AppState>,
    _staff: Staff,
    layout: Layout,
    session: Session,
    path: web::Path<String>,
) -> Result<ProgramPage, WebError> {
    let program = find_program(&state, &path).await?;
    Ok(ProgramPage::new(layout, &session, program))
}

/// `POST /admin/programs/{name}/options`: set_program_options, then the program's page.
pub async fn save_options(
    state: web::Data<AppState>,
    Staff(_, audit): Staff,
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    CsrfForm(input): CsrfForm<OptionsInput>,
) -> Result<HttpResponse, WebError> {
    let program = find_program(&state, &path).await?;
    let saved = match input.parse() {
        Err(errors) => Err(errors),
        Ok(options) => {
            let name = program.name.clone();
            let outcome = with_conn(&state, move |conn| {
                Ok::<_, WebError>(queueing::set_program_options_as(
                    conn, &audit, &name, options,
                ))
            })
            .await?;
            match outcome {
                Err(OperationError::Database(err)) => return Err(err.into()),
                Err(refused) => Err(refused_fields(&refused)),
                Ok(stored) => Ok(stored),
            }
        }
    };
    match saved {
        Ok(options) => {
            flash::success(
                &session,
                format!(
                    "Options of {} saved: priority {}; running: {}; starts: {}.",
                    program.name,
                    options.priority,
                    running_limit(&options.max_running),
                    rate_limit(&options.per_minute)
                ),
            );
            Ok(see_other(&format!("/admin/programs/{}", program.name)))
        }
        Err(errors) => {
            let page = ProgramPage {
                options: input,
                errors,
                ..ProgramPage::new(Layout::extract(&req).await?, &session, program)
            };
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

/// The fields a refusal names, as the form's messages (one that names none is shown at the
/// first field).
fn refused_fields(err: &OperationError) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if let OperationError::Refused { fields, .. } = err {
        for (name, label) in [
            ("priority", "Priority"),
            ("max_running", "At most running"),
            ("per_minute", "Starts a minute"),
        ] {
            if let Some(problem) = fields.get(name) {
                errors.add(name, problem.sentence(label));
            }
        }
    }
    if errors.is_empty() {
        errors.add("priority", format!("Nothing was saved: {err}."));
    }
    errors
}
