use askama::Template;
use askama_web::WebTemplate;

use crate::{
    domain::{
        catalog::{self, BookSummary},
        thousands,
    },
    web::{
        cover::WithCover as _,
        error::WebError,
        layout::Layout,
        reads::{Reads, with_read_conn},
    },
};

/// Books per shelf: a row at the widest layout (4 columns) times two.
const SHELF: i64 = 8;

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
    /// Books the catalog lists, written for people ("9,812").
    listed: String,
    bestsellers: Vec<BookSummary>,
    newest: Vec<BookSummary>,
}

/// `GET /`: the shop window, from the catalog as it is.
pub async fn get(reads: Reads, layout: Layout) -> Result<HomePage, WebError> {
    let (listed, bestsellers, newest) = with_read_conn(&reads, |conn| {
        Ok::<_, diesel::result::Error>((
            catalog::listed_count(conn)?,
            catalog::bestsellers(conn, SHELF)?,
            catalog::newest(conn, SHELF)?,
        ))
    })
    .await?;
    Ok(HomePage {
        layout,
        listed: thousands(listed.unsigned_abs()),
        bestsellers,
        newest,
    })
}
