//! The web side of the audit log: refusals (403s: a customer on a staff page, a forged or
//! expired form, an API call without rights), recognised here once for every route. Every
//! other event is recorded by the domain function that makes its change.

use actix_web::{
    Error, HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};

use crate::{
    audit::{self, Actor, AuditAction, AuditContext},
    web::{
        AppState,
        api::ApiError,
        auth::{Visitor, client_address},
        error::WebError,
        with_conn,
    },
};

/// Which refusal an error is, if it is one.
fn refusal(err: &Error) -> Option<AuditAction> {
    if let Some(web_error) = err.as_error::<WebError>() {
        return match web_error {
            WebError::Forbidden => Some(AuditAction::AccessRefused),
            WebError::CsrfRejected => Some(AuditAction::CsrfRefused),
            _ => None,
        };
    }
    err.as_error::<ApiError>().and_then(ApiError::refusal)
}

/// Middleware: every refused request leaves an event (and a warning in the log).
pub async fn record_refusals(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // Taken before the call: holding the request itself across it is not allowed.
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (method, path) = (req.method().to_string(), req.path().to_owned());
    let address = client_address(req.request());
    let outcome = next.call(req).await;
    let (action, actor, pattern) = match &outcome {
        Ok(response) => (
            response.response().error().and_then(refusal),
            // Who, as far as the request got: known if a handler resolved the visitor.
            match response.request().extensions().get::<Visitor>() {
                Some(Visitor(Some(user))) => user.actor(),
                _ => Actor::Visitor,
            },
            response.request().match_pattern(),
        ),
        Err(err) => (refusal(err), Actor::Visitor, None),
    };
    if let (Some(action), Some(state)) = (action, state) {
        let context = AuditContext::new(actor, Some(address));
        // The route's pattern, not the path: a path can carry a secret (a reset link's token).
        let subject = format!("{method} {}", pattern.unwrap_or_else(|| redacted(&path)));
        let recorded = with_conn(&state, move |conn| {
            audit::record_refusal(conn, &context, action, &subject)
        })
        .await;
        // The refusal stands either way: a failure to record it is logged, not shown.
        if let Err(err) = recorded {
            tracing::error!(
                action = action.as_str(),
                "the audit event was not recorded: {err:?}"
            );
        }
    }
    outcome
}

/// A path with every long segment (a token, a digest) replaced by `{…}`, for requests refused
/// before routing.
fn redacted(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.len() >= 24 {
                "{…}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_segments_are_not_recorded() {
        let token = "ab".repeat(32);
        assert_eq!(
            super::redacted(&format!("/password-reset/{token}")),
            "/password-reset/{…}"
        );
        assert_eq!(
            super::redacted("/cart/items/12/remove"),
            "/cart/items/12/remove"
        );
    }
}
