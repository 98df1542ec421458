//! API errors: JSON `{"error": {"code", "message", "fields"}}` with the HTTP status that fits.
//! The code is machine-readable; the messages are the ones the pages show.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;

use crate::{
    tasks::ops::{OperationError, RefusalCode},
    web::error::WebError,
};

/// The machine-readable `code` of an error. The refusals of the engine's SQL functions
/// (`program_not_found`, `invalid_parameters`, ...) keep the names those functions give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not JSON of the expected shape.
    InvalidJson,
    /// 400: the query string cannot be read, or a filter of the task list is wrong.
    InvalidQuery,
    /// 400: a body, path or query the input guard refuses (not UTF-8, control characters).
    InvalidInput,
    InvalidAction,
    InvalidFilter,
    TooManyIds,
    NothingNamed,
    TooManyTasks,
    /// 413: the body is larger than the route accepts.
    BodyTooLarge,
    /// 401: no staff session and no token, or a token unknown, revoked or expired.
    Unauthenticated,
    /// 403: not staff.
    Forbidden,
    /// 403: a state-changing call with a session cookie and no CSRF token or origin.
    CsrfRejected,
    /// 404: no such route, task, batch or program.
    NotFound,
    ProgramNotFound,
    TaskNotFound,
    /// 409
    ProgramDisabled,
    /// 409
    NameTaken,
    /// 422
    InvalidParameters,
    InvalidSchedule,
    UnknownFunction,
    InvalidName,
    InvalidOption,
    UnknownUpstream,
    /// 500
    Internal,
    /// 503: the database is out of reach.
    Unavailable,
}

impl ErrorCode {
    /// The code as the body writes it (`program_not_found`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::InvalidAction => "invalid_action",
            ErrorCode::InvalidFilter => "invalid_filter",
            ErrorCode::TooManyIds => "too_many_ids",
            ErrorCode::NothingNamed => "nothing_named",
            ErrorCode::TooManyTasks => "too_many_tasks",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::CsrfRejected => "csrf_rejected",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ProgramNotFound => "program_not_found",
            ErrorCode::TaskNotFound => "task_not_found",
            ErrorCode::ProgramDisabled => "program_disabled",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::InvalidParameters => "invalid_parameters",
            ErrorCode::InvalidSchedule => "invalid_schedule",
            ErrorCode::UnknownFunction => "unknown_function",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidOption => "invalid_option",
            ErrorCode::UnknownUpstream => "unknown_upstream",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

/// The engine's refusals keep the names its SQL functions give them.
impl From<RefusalCode> for ErrorCode {
    fn from(code: RefusalCode) -> Self {
        match code {
            RefusalCode::ProgramNotFound => ErrorCode::ProgramNotFound,
            RefusalCode::ProgramDisabled => ErrorCode::ProgramDisabled,
            RefusalCode::InvalidParameters => ErrorCode::InvalidParameters,
            RefusalCode::InvalidSchedule => ErrorCode::InvalidSchedule,
            RefusalCode::TaskNotFound => ErrorCode::TaskNotFound,
            RefusalCode::UnknownFunction => ErrorCode::UnknownFunction,
            RefusalCode::NameTaken => ErrorCode::NameTaken,
            RefusalCode::InvalidName => ErrorCode::InvalidName,
            RefusalCode::InvalidOption => ErrorCode::InvalidOption,
            RefusalCode::UnknownUpstream => ErrorCode::UnknownUpstream,
        }
    }
}

/// An error of the API, as its body's `error` says it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    code: ErrorCode,
    /// For a person to read.
    message: String,
    /// The fields of the body or query at fault, each with what is wrong with it.
    fields: BTreeMap<String, String>,
    /// Which element of a list in the body is wrong (0-based), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    /// A bearer token was refused (an authentication failure the audit log records).
    #[serde(skip)]
    token_refused: bool,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            index: None,
            token_refused: false,
        }
    }

    /// The audit log's name for this error, when it refuses access.
    pub fn refusal(&self) -> Option<crate::audit::AuditAction> {
        use crate::audit::AuditAction;
        if self.token_refused {
            return Some(AuditAction::TokenRefused);
        }
        match (self.status, self.code) {
            (StatusCode::FORBIDDEN, ErrorCode::CsrfRejected) => Some(AuditAction::CsrfRefused),
            (StatusCode::FORBIDDEN, _) => Some(AuditAction::AccessRefused),
            _ => None,
        }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: the body reads, but what it asks for cannot be done.
    pub fn unprocessable(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 422 `invalid_option`: a run option or a program option that cannot be, worded as our
    /// SQL functions word theirs ("invalid priority: must be ...", the field: "must be ...").
    pub fn invalid_option(field: &str, problem: impl Into<String>) -> ApiError {
        let problem = problem.into();
        let message = format!("invalid {field}: {problem}");
        let mut error = ApiError::unprocessable(ErrorCode::InvalidOption, message);
        error.fields.insert(field.to_owned(), problem);
        error
    }

    /// 413 for a body past its route's limit.
    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!("The body is larger than this route accepts ({limit} bytes)."),
        )
    }

    /// 404 `program_not_found`, as `run_program` refuses an unknown name.
    pub fn program_not_found(name: &str) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ProgramNotFound,
            format!("no program named {name}"),
        );
        error
            .fields
            .insert("program".into(), "no such program".into());
        error
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            message,
        )
    }

    /// 401 for a token that is unknown, revoked or expired; recorded as `token.refused`.
    pub fn token_refused() -> ApiError {
        ApiError {
            token_refused: true,
            ..ApiError::unauthenticated("That API token is unknown, revoked or expired.")
        }
    }

    pub fn csrf_rejected(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, ErrorCode::CsrfRejected, message)
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "The API is for staff only.",
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        let message = message.into();
        tracing::error!("API: {message}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "Something went wrong on our side.",
        )
    }

    /// The error names one field (its message is the error's).
    pub fn with_field(mut self, field: &str) -> ApiError {
        self.fields.insert(field.to_owned(), self.message.clone());
        self
    }

    pub fn with_fields(mut self, fields: BTreeMap<String, String>) -> ApiError {
        self.fields = fields;
        self
    }

    /// The error is about element `index` (0-based) of a list of `of`: says so in `index` and
    /// the message ("task 3 of 10: ...", as `run_programs` words it, which this also reads).
    pub fn at_element(mut self, index: usize, of: usize) -> ApiError {
        let prefix = format!("task {} of {of}: ", index + 1);
        if !self.message.starts_with(&prefix) {
            self.message.insert_str(0, &prefix);
        }
        self.index = Some(index);
        self
    }

    /// For a list of `of` queued in one statement: the element `run_programs` named in its
    /// message, if it named one.
    pub fn at_named_element(self, of: usize) -> ApiError {
        let named = self
            .message
            .strip_prefix("task ")
            .and_then(|rest| rest.split_once(&format!(" of {of}: ")))
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .filter(|n| (1..=of).contains(n));
        match named {
            Some(n) => self.at_element(n - 1, of),
            None => self,
        }
    }

    /// A field the SQL function names by its own parameter, named as the body names it.
    pub fn renaming(mut self, sql_name: &str, body_name: &str) -> ApiError {
        if let Some(message) = self.fields.remove(sql_name) {
            self.fields.insert(body_name.to_owned(), message);
        }
        self
    }

    /// The error's fields are those of a part of the body: `program` becomes
    /// `callback.program`.
    pub fn within(mut self, part: &str) -> ApiError {
        self.fields = std::mem::take(&mut self.fields)
            .into_iter()
            .map(|(field, message)| (format!("{part}.{field}"), message))
            .collect();
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(serde_json::json!({ "error": self }))
    }
}

impl From<OperationError> for ApiError {
    fn from(err: OperationError) -> Self {
        match err {
            OperationError::Refused {
                code,
                message,
                fields,
            } => {
                let status = match code {
                    RefusalCode::ProgramNotFound | RefusalCode::TaskNotFound => {
                        StatusCode::NOT_FOUND
                    }
                    RefusalCode::NameTaken | RefusalCode::ProgramDisabled => StatusCode::CONFLICT,
                    RefusalCode::InvalidParameters
                    | RefusalCode::InvalidSchedule
                    | RefusalCode::UnknownFunction
                    | RefusalCode::InvalidName
                    | RefusalCode::InvalidOption
                    | RefusalCode::UnknownUpstream => StatusCode::UNPROCESSABLE_ENTITY,
                };
                let fields = fields
                    .into_iter()
                    .map(|(field, problem)| (field, problem.text().to_owned()))
                    .collect();
                ApiError::new(status, code.into(), message).with_fields(fields)
            }
            OperationError::Database(err) => ApiError::internal(err.to_string()),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        ApiError::from(OperationError::from(err))
    }
}

impl From<WebError> for ApiError {
    fn from(err: WebError) -> Self {
        match err {
            WebError::NotFound => ApiError::not_found("Not found."),
            WebError::CsrfRejected => ApiError::csrf_rejected(err.to_string()),
            WebError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                err.to_string(),
            ),
            other => ApiError::internal(format!("{other:?}")),
        }
    }
}
