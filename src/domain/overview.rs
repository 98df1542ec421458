//! Figures for the staff overview: the shop's own (the tasks' are `tasks::stats`).

use diesel::prelude::*;

use crate::db::schema::{books, orders, users};

#[derive(Debug, Clone, Default)]
pub struct ShopCounts {
    pub books: i64,
    pub customers: i64,
    pub staff: i64,
    pub orders: i64,
}

pub fn shop_counts(conn: &mut PgConnection) -> QueryResult<ShopCounts> {
    Ok(ShopCounts {
        books: books::table.count().get_result(conn)?,
        customers: users::table
            .filter(users::role.eq("customer"))
            .count()
            .get_result(conn)?,
        staff: users::table
            .filter(users::role.eq("staff"))
            .count()
            .get_result(conn)?,
        orders: orders::table.count().get_result(conn)?,
    })
}
