//! What the shared page layout (templates/base.html) shows around every page.

use actix_session::SessionExt;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use futures_util::future::LocalBoxFuture;

use crate::{
    domain::accounts::User,
    web::{auth::Visitor, csrf, error::WebError, flash},
};

/// The header's view of the visitor, and the flash messages to show once.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub user: Option<NavUser>,
    pub flashes: Vec<Flash>,
    /// For the header's log-out form; only logged-in visitors have one (anonymous browsing
    /// creates no session).
    pub csrf_token: String,
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

impl From<&User> for NavUser {
    fn from(user: &User) -> Self {
        NavUser {
            display_name: user.display_name.clone(),
            is_staff: user.is_staff(),
        }
    }
}

impl FromRequest for Layout {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let visitor = Visitor::from_request(req, payload);
        let session = req.get_session();
        Box::pin(async move {
            let Visitor(user) = visitor.await?;
            let csrf_token = if user.is_some() {
                csrf::token(&session)
            } else {
                String::new()
            };
            Ok(Layout {
                user: user.as_ref().map(NavUser::from),
                flashes: flash::take(&session),
                csrf_token,
            })
        })
    }
}
