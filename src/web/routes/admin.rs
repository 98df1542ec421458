//! The staff area.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::{
    domain::overview::{self, ShopCounts},
    web::{AppState, auth::Staff, error::WebError, layout::Layout, with_conn},
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/overview.html")]
pub struct OverviewPage {
    layout: Layout,
    counts: ShopCounts,
}

/// `GET /admin`: staff only.
pub async fn overview(
    state: web::Data<AppState>,
    _staff: Staff,
    layout: Layout,
) -> Result<OverviewPage, WebError> {
    let counts = with_conn(&state, overview::shop_counts).await?;
    Ok(OverviewPage { layout, counts })
}
