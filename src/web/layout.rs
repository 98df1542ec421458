//! What the shared page layout (templates/base.html) shows around every page.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload};

/// The header's view of the visitor and the flash messages to show once.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub user: Option<NavUser>,
    pub flashes: Vec<Flash>,
}

#[derive(Debug, Clone)]
pub struct NavUser {
    pub display_name: String,
    pub is_staff: bool,
}

#[derive(Debug, Clone)]
pub struct Flash {
    /// `info`, `success` or `error`: a CSS class.
    pub level: &'static str,
    pub text: String,
}

/// Every page handler takes a `Layout`; until accounts exist every visitor is anonymous.
impl FromRequest for Layout {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(_req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Ok(Layout::default()))
    }
}
