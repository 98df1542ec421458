//! One guard in front of every route: text that no field of ours may carry (a NUL, which
//! PostgreSQL cannot store, other control characters, invalid UTF-8) in the path, the query
//! string, a form body or a JSON body is refused with a 400 that says so, before any handler
//! or the database sees it. JSON is judged as the text it decodes to, wherever it comes in: a
//! JSON body (any type actix's `Json` accepts), or a query or form value that is a JSON object
//! or array (the task search reads one), so an escaped `\u0000` never reaches jsonb either.
//! Lengths and formats are the parsed types' business (`domain`). A body is read up to
//! actix's default 256 KiB, or the larger limit of the few routes that take more.

use std::rc::Rc;

use actix_web::{
    HttpMessage, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{Extensions, Payload, ServiceRequest, ServiceResponse},
    http::StatusCode,
    middleware::Next,
    web::{Bytes, PayloadConfig},
};
use percent_encoding::percent_decode;
use serde_json::Value;

use crate::web::{
    api::{self, ApiError, ErrorCode},
    error::WebError,
};

/// Why a piece of input was refused, for the message.
fn unsafe_text(text: &[u8]) -> Option<&'static str> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Some("text that is not valid UTF-8");
    };
    if text.contains('\0') {
        return Some("a NUL character");
    }
    // Tabs and line breaks are text (a description has them); other control characters are not.
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        .then_some("a control character")
}

/// `a=b&c=d` as a form or a query string encodes it ('+' is a space). A value that is a JSON
/// object or array is also judged by what its strings decode to.
fn unsafe_urlencoded(encoded: &[u8]) -> Option<&'static str> {
    encoded
        .split(|b| *b == b'&')
        .flat_map(|pair| pair.splitn(2, |b| *b == b'='))
        .find_map(|part| {
            let spaced: Vec<u8> = part
                .iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect();
            let decoded: Vec<u8> = percent_decode(&spaced).collect();
            unsafe_text(&decoded).or_else(|| {
                let start = decoded.trim_ascii_start();
                if start.starts_with(b"{") || start.starts_with(b"[") {
                    unsafe_json(&decoded)
                } else {
                    None
                }
            })
        })
}

/// Every string (and key) of a JSON document. Malformed JSON is the handler's to refuse.
fn unsafe_json(body: &[u8]) -> Option<&'static str> {
    fn walk(value: &Value) -> Option<&'static str> {
        match value {
            Value::String(text) => unsafe_text(text.as_bytes()),
            Value::Array(items) => items.iter().find_map(walk),
            Value::Object(fields) => fields
                .iter()
                .find_map(|(key, value)| unsafe_text(key.as_bytes()).or_else(|| walk(value))),
            _ => None,
        }
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| walk(&value))
}

/// What actix's `PayloadConfig` reads by default: the most of a body this guard judges, except
/// on the routes that take more (`api::large_body_limit`).
const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

enum BodyKind {
    Json,
    Form,
}

/// Which bodies the extractors would read, judged as they judge them: actix's `Form` compares
/// the type case-insensitively, its `Json` takes any `*/json` and `*/*+json`.
fn body_kind(req: &ServiceRequest) -> Option<BodyKind> {
    if req
        .content_type()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    {
        return Some(BodyKind::Form);
    }
    match req.mime_type() {
        Ok(Some(mime))
            if mime.subtype() == actix_web::mime::JSON
                || mime.suffix() == Some(actix_web::mime::JSON) =>
        {
            Some(BodyKind::Json)
        }
        _ => None,
    }
}

/// The middleware. Its refusal is a response (not an error), so the outer middleware still
/// adds the security headers to it.
pub async fn reject_unsafe_input<B: MessageBody>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let uri = req.uri().clone();
    let mut problem = unsafe_text(&percent_decode(uri.path().as_bytes()).collect::<Vec<u8>>())
        .or_else(|| {
            uri.query()
                .and_then(|query| unsafe_urlencoded(query.as_bytes()))
        });
    let body_kind = body_kind(&req);
    if problem.is_none()
        && let Some(kind) = body_kind
    {
        let large = api::large_body_limit(req.method(), req.path());
        if let Some(limit) = large {
            // The route takes bodies past the default that `extract` reads below.
            let mut larger = Extensions::new();
            larger.insert(PayloadConfig::new(limit));
            req.add_data_container(Rc::new(larger));
        }
        let body = match req.extract::<Bytes>().await {
            Ok(body) => body,
            Err(err)
                if uri.path().starts_with("/api/")
                    && err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                let limit = large.unwrap_or(DEFAULT_BODY_LIMIT);
                let response = ApiError::body_too_large(limit).error_response();
                return Ok(req.into_response(response).map_into_right_body());
            }
            Err(err) => return Err(err),
        };
        problem = match kind {
            BodyKind::Json => unsafe_json(&body),
            BodyKind::Form => unsafe_urlencoded(&body),
        };
        req.set_payload(Payload::from(body));
    }
    if let Some(problem) = problem {
        let message = format!(
            "The request contains {problem}, which no field here accepts. Nothing was changed."
        );
        let response = if uri.path().starts_with("/api/") {
            ApiError::bad_request(ErrorCode::InvalidInput, message).error_response()
        } else {
            WebError::BadRequest(message).error_response()
        };
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_broken_utf8_are_refused_wherever_they_hide() {
        assert_eq!(unsafe_urlencoded(b"q=harry+potter&page=2"), None);
        assert_eq!(unsafe_urlencoded(b"description=line%0Aline%09tab"), None);
        assert_eq!(unsafe_urlencoded(b"q=%00"), Some("a NUL character"));
        assert_eq!(unsafe_urlencoded(b"a=1&%00=2"), Some("a NUL character"));
        assert_eq!(
            unsafe_urlencoded(b"q=%1B%5B2J"),
            Some("a control character")
        );
        assert_eq!(
            unsafe_urlencoded(b"q=%FF%FE"),
            Some("text that is not valid UTF-8")
        );
        assert_eq!(unsafe_json(br#"{"name": "ok", "n": [1, "fine"]}"#), None);
        assert_eq!(
            unsafe_json(br#"{"name": "a\u0000b"}"#),
            Some("a NUL character")
        );
        assert_eq!(
            unsafe_json(br#"{"p": {"x\u0007": 1}}"#),
            Some("a control character")
        );
        assert_eq!(unsafe_json(b"not json"), None);
        assert_eq!(
            unsafe_urlencoded(br#"q={"a":"\u0000"}"#),
            Some("a NUL character")
        );
        assert_eq!(
            unsafe_urlencoded(b"q=%5B%7B%22a%5Cu0000%22%3A1%7D%5D"),
            Some("a NUL character")
        );
        assert_eq!(unsafe_urlencoded(br#"q=say+\u0000"#), None);
    }
}
