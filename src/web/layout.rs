//! What the shared page layout (templates/base.html) shows around every page. Above `auth`,
//! `csrf` and `flash`, whose parts it gathers; none of them imports it.

use actix_session::SessionExt;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use futures_util::future::LocalBoxFuture;

use crate::{
    domain::{
        accounts::{User, sessions},
        cart,
    },
    web::{
        auth::Visitor,
        csrf,
        error::WebError,
        flash::{self, Flash},
        session_end::{SessionCookie, message as session_end_message},
        state::{AppState, with_conn},
    },
};

/// The header's view of the visitor, and the flash messages to show once.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub user: Option<NavUser>,
    pub flashes: Vec<Flash>,
    /// For the header's log-out form; only logged-in visitors have one (anonymous browsing
    /// creates no session).
    pub csrf_token: String,
    /// The request's path, so both menus can mark where the visitor is (`aria-current`).
    pub path: String,
}

impl Layout {
    /// Whether the menu link to `section` leads to this page or to a page inside it:
    /// "/admin/books" is current on "/admin/books/7/edit", never on "/admin/booksellers".
    pub fn is_current(&self, section: &str) -> bool {
        self.path
            .strip_prefix(section)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Whether `page` is this very page (for a link whose section holds the other links, like
    /// the staff overview at "/admin").
    pub fn is_page(&self, page: &str) -> bool {
        self.path == page
    }
}

#[derive(Debug, Clone)]
pub struct NavUser {
    pub display_name: String,
    pub is_staff: bool,
    /// Copies in their cart, shown next to "Cart".
    pub cart_copies: i64,
}

impl From<&User> for NavUser {
    fn from(user: &User) -> Self {
        NavUser {
            display_name: user.display_name.clone(),
            is_staff: user.is_staff(),
            cart_copies: 0,
        }
    }
}

impl FromRequest for Layout {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let visitor = Visitor::from_request(req, payload);
        let session = req.get_session();
        let path = req.path().to_owned();
        let state = req.app_data::<actix_web::web::Data<AppState>>().cloned();
        // A cookie whose session is gone may belong to a session another device's log-in ended.
        let cookie_token = req
            .app_data::<actix_web::web::Data<SessionCookie>>()
            .and_then(|cookie| cookie.token_in(req));
        Box::pin(async move {
            let Visitor(user) = visitor.await?;
            let mut flashes = Vec::new();
            if let (None, Some(token), Some(state)) = (&user, cookie_token, &state) {
                let ended =
                    with_conn(state, move |conn| sessions::take_end_of(conn, &token)).await?;
                if let Some((end, at)) = ended {
                    flashes.push(Flash {
                        level: "info",
                        text: session_end_message(end, at),
                        action: None,
                        about: None,
                    });
                }
            }
            flashes.extend(flash::take(&session));
            let cart_copies = match (&user, state) {
                (Some(user), Some(state)) => {
                    let user_id = user.id;
                    with_conn(&state, move |conn| cart::copies_in_cart(conn, user_id)).await?
                }
                _ => 0,
            };
            let csrf_token = if user.is_some() {
                csrf::token(&session)
            } else {
                String::new()
            };
            Ok(Layout {
                user: user.as_ref().map(|user| NavUser {
                    cart_copies,
                    ..NavUser::from(user)
                }),
                flashes,
                csrf_token,
                path,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str) -> Layout {
        Layout {
            path: path.to_owned(),
            ..Layout::default()
        }
    }

    #[test]
    fn a_section_is_current_on_its_pages_only() {
        assert!(at("/books").is_current("/books"));
        assert!(at("/books/12").is_current("/books"));
        assert!(at("/admin/books/7/edit").is_current("/admin/books"));
        assert!(at("/admin/tasks").is_current("/admin"));
        assert!(!at("/admin/booksellers").is_current("/admin/books"));
        assert!(!at("/").is_current("/books"));
        assert!(at("/admin").is_page("/admin"));
        assert!(!at("/admin/tasks").is_page("/admin"));
    }
}
