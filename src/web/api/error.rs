//! API errors: JSON `{"error": {"code", "message", "fields"}}` with the HTTP status that fits.
//! The code is machine-readable; the messages are the ones the pages show.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;

use crate::{
    tasks::ops::{OperationError, RefusalCode},
    web::error::WebError,
};

/// An error of the API, as its body's `error` says it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    #[schema(value_type = crate::web::api::schemas::ErrorCode)]
    code: String,
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
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
            fields: BTreeMap::new(),
            index: None,
            token_refused: false,
        }
    }

    /// The audit log's name for this error, when it refuses access.
    pub fn refusal(&self) -> Option<crate::domain::audit::AuditAction> {
        use crate::domain::audit::AuditAction;
        if self.token_refused {
            return Some(AuditAction::TokenRefused);
        }
        match (self.status, self.code.as_str()) {
            (StatusCode::FORBIDDEN, "csrf_rejected") => Some(AuditAction::CsrfRefused),
            (StatusCode::FORBIDDEN, _) => Some(AuditAction::AccessRefused),
            _ => None,
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: the body reads, but what it asks for cannot be done.
    pub fn unprocessable(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 422 `invalid_option`: a run option or a program option that cannot be, worded as our
    /// SQL functions word theirs ("invalid priority: must be ...", the field: "must be ...").
    pub fn invalid_option(field: &str, problem: impl Into<String>) -> ApiError {
        let problem = problem.into();
        let message = format!("invalid {field}: {problem}");
        let mut error = ApiError::unprocessable(RefusalCode::InvalidOption.as_str(), message);
        error.fields.insert(field.to_owned(), problem);
        error
    }

    /// 413 for a body past its route's limit.
    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("The body is larger than this route accepts ({limit} bytes)."),
        )
    }

    /// 404 `program_not_found`, as `run_program` refuses an unknown name.
    pub fn program_not_found(name: &str) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::NOT_FOUND,
            RefusalCode::ProgramNotFound.as_str(),
            format!("no program named {name}"),
        );
        error
            .fields
            .insert("program".into(), "no such program".into());
        error
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 401 for a token that is unknown, revoked or expired; recorded as `token.refused`.
    pub fn token_refused() -> ApiError {
        ApiError {
            token_refused: true,
            ..ApiError::unauthenticated("That API token is unknown, revoked or expired.")
        }
    }

    pub fn csrf_rejected(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "csrf_rejected", message)
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The API is for staff only.",
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        let message = message.into();
        tracing::error!("API: {message}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
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
        write!(f, "{}: {}", self.code, self.message)
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
                ApiError::new(status, code.as_str(), message).with_fields(fields)
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
                "unavailable",
                err.to_string(),
            ),
            other => ApiError::internal(format!("{other:?}")),
        }
    }
}
