//! The staff overview (`/admin`): the shop's and the queue's counts, the hourly chart and the
//! latest tasks, refreshed live.

use actix_web::{Either, FromRequest, HttpRequest, web};
use askama::Template;
use askama_web::WebTemplate;
use chrono::Utc;
use serde::Deserialize;

use crate::{
    db::counting::Count,
    domain::overview::{self, ShopCounts},
    tasks::{
        listing, stats,
        status::TaskStatus,
        views::{self, TaskRow},
    },
    web::{
        AppState,
        auth::Staff,
        chart::{self, Chart},
        error::WebError,
        layout::Layout,
        with_conn,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/overview.html")]
pub struct OverviewPage {
    layout: Layout,
    shop: ShopCounts,
    live: OverviewLive,
}

/// The part of the overview that updates itself: counts, chart, running, failures, latest.
/// Served alone at `/admin?live=1`, so the page's script fetches one fragment per round.
#[derive(Template, WebTemplate)]
#[template(path = "admin/_overview_live.html")]
pub struct OverviewLive {
    /// Exact up to a threshold, estimates beyond ("about 10.0M").
    counts: Vec<(TaskStatus, Count)>,
    running: Vec<TaskRow>,
    latest: Vec<TaskRow>,
    failures: Vec<TaskRow>,
    chart: Chart,
    /// The task tables here have no checkboxes.
    selectable: bool,
}

/// `?live=1`: the self-updating part of a page only.
#[derive(Debug, Default, Deserialize)]
pub struct LiveParam {
    #[serde(default)]
    live: Option<String>,
}

impl LiveParam {
    pub fn wanted(&self) -> bool {
        self.live.is_some()
    }
}

/// `GET /admin` (and `GET /admin?live=1`, its live part)
pub async fn overview(
    state: web::Data<AppState>,
    _staff: Staff,
    req: HttpRequest,
    live: web::Query<LiveParam>,
) -> Result<Either<OverviewLive, OverviewPage>, WebError> {
    let now = Utc::now();
    let (shop, counts, running, latest, failures, hourly) = with_conn(&state, move |conn| {
        Ok::<_, diesel::result::Error>((
            overview::shop_counts(conn)?,
            stats::status_counts(conn)?,
            views::running_tasks(conn)?,
            listing::latest_tasks(conn, 10)?,
            views::failures_since(conn, now - chrono::Duration::hours(24), 10)?,
            stats::hourly_counts(conn, now)?,
        ))
    })
    .await?;
    let fragment = OverviewLive {
        selectable: false,
        counts,
        running,
        latest,
        failures,
        chart: chart::hourly(&hourly, now),
    };
    if live.wanted() {
        return Ok(Either::Left(fragment));
    }
    // Only the whole page takes the pending flash messages (a live fetch would swallow them).
    Ok(Either::Right(OverviewPage {
        layout: Layout::extract(&req).await?,
        shop,
        live: fragment,
    }))
}
