//! A customer's own orders.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::ids::OrderId;
use crate::{
    domain::orders::{self, OrderDetail, OrderSummary},
    web::{AppState, auth::CurrentUser, error::WebError, layout::Layout, with_conn},
};

#[derive(Template, WebTemplate)]
#[template(path = "orders.html")]
pub struct OrdersPage {
    layout: Layout,
    orders: Vec<OrderSummary>,
}

/// `GET /orders`
pub async fn list(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    layout: Layout,
) -> Result<OrdersPage, WebError> {
    let orders = with_conn(&state, move |conn| orders::orders_of(conn, user.id)).await?;
    Ok(OrdersPage { layout, orders })
}

#[derive(Template, WebTemplate)]
#[template(path = "order.html")]
pub struct OrderPage {
    layout: Layout,
    order: OrderDetail,
}

/// `GET /orders/{id}`: another user's order is a 404, like a missing one.
pub async fn show(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    layout: Layout,
    path: web::Path<String>,
) -> Result<OrderPage, WebError> {
    let order_id: OrderId = path.parse().map_err(|_| WebError::NotFound)?;
    let order = with_conn(&state, move |conn| {
        orders::order_of(conn, user.id, order_id)
    })
    .await?
    .ok_or(WebError::NotFound)?;
    Ok(OrderPage { layout, order })
}
