//! API errors: JSON `{"error": {"code", "message", "fields"}}` with the HTTP status that fits.
//! The code is machine-readable; the messages are the ones the pages show.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;

use crate::{
    tasks::ops::{OperationError, RefusalCode},
    web::error::WebError,
};

#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    code: String,
    message: String,
    fields: BTreeMap<String, String>,
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
