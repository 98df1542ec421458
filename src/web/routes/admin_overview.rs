//! The staff overview (`/admin`): the shop's and the queue's counts, the hourly chart and the
//! latest tasks, refreshed live.

use actix_web::{Either, FromRequest, HttpRequest, web};
use askama::Template;
use askama_web::WebTemplate;
use chrono::Utc;
use serde::Deserialize;

use crate::{
    domain::overview::{self, ShopCounts},
    tasks::{
        status::TaskStatus,
        views::{self, TaskFilter, TaskRow, TaskSort},
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
    counts: Vec<(TaskStatus, i64)>,
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
    let (shop, counts, running, latest, failures, hourly) = with_conn(&state, |conn| {
        Ok::<_, diesel::result::Error>((
            overview::shop_counts(conn)?,
            views::status_counts(conn)?,
            views::running_tasks(conn)?,
            views::list_tasks(conn, &TaskFilter::default(), TaskSort::Created, 1, 10)?.0,
            views::failures_since(conn, Utc::now() - chrono::Duration::hours(24), 10)?,
            views::hourly_counts(conn)?,
        ))
    })
    .await?;
    let fragment = OverviewLive {
        selectable: false,
        counts,
        running,
        latest,
        failures,
        chart: chart::hourly(&hourly, Utc::now()),
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
