//! `/admin/api`: the JSON API's reference for staff, from its OpenAPI document.

use askama::Template;
use askama_web::WebTemplate;

use crate::web::{
    api::reference::{self, Reference},
    auth::Staff,
    layout::Layout,
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/api.html")]
pub struct ApiPage {
    layout: Layout,
    reference: Reference,
}

/// `GET /admin/api`.
pub async fn show(_staff: Staff, layout: Layout) -> ApiPage {
    ApiPage {
        layout,
        reference: reference::reference(),
    }
}
