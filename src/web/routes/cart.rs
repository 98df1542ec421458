//! The cart and checkout. Only for logged-in customers; every line id is checked against the
//! user, so another user's line is "not found".

use actix_session::Session;
use actix_web::{FromRequest, HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use uuid::Uuid;

use crate::ids::UserId;
use crate::{
    audit::AuditContext,
    domain::{
        cart::{self, Cart, CartError, LineQuantity, QuantityChange},
        orders::{self, CheckoutError, Shortage},
    },
    ids::{BookId, CartLineId},
    monitoring::{self, Checkout},
    web::{
        AppState,
        auth::{CurrentUser, Visitor, client_address},
        csrf::{self, CsrfForm},
        error::{WebError, html, see_other},
        flash::{self, FlashAction},
        forms::NoFields,
        layout::Layout,
        with_conn,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "cart.html")]
pub struct CartPage {
    layout: Layout,
    cart: Cart,
    csrf_token: String,
    /// A fresh key per rendering of the checkout form: submitting the same form twice places
    /// one order.
    checkout_key: Uuid,
    shortages: Vec<Shortage>,
}

impl CartPage {
    fn shortage_of(&self, book_id: &BookId) -> Option<&Shortage> {
        self.shortages.iter().find(|s| s.book_id == *book_id)
    }
}

async fn cart_page(
    state: &AppState,
    user_id: UserId,
    layout: Layout,
    session: &Session,
    shortages: Vec<Shortage>,
) -> Result<CartPage, WebError> {
    let cart = with_conn(state, move |conn| cart::cart_of(conn, user_id)).await?;
    Ok(CartPage {
        layout,
        cart,
        csrf_token: csrf::token(session),
        checkout_key: Uuid::new_v4(),
        shortages,
    })
}

/// `GET /cart`
pub async fn show(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    layout: Layout,
    session: Session,
) -> Result<CartPage, WebError> {
    cart_page(&state, user.id, layout, &session, Vec::new()).await
}

#[derive(Deserialize)]
pub struct AddForm {
    book_id: String,
    quantity: String,
    /// `cart` when the add comes from the cart page (its undo): go back there.
    #[serde(default)]
    then: Option<String>,
}

/// An add to the cart made before logging in: kept in the session and carried out right
/// after the log-in (or registration).
#[derive(Debug, serde::Serialize, Deserialize)]
pub struct PendingAdd {
    book_id: BookId,
    quantity: String,
}

const PENDING_ADD_KEY: &str = "pending_add";

/// `POST /cart/items`: add copies of a book (from the book page). A visitor who is not logged
/// in is sent to log in first, and the add happens right after (see [`finish_pending_add`]).
pub async fn add(
    state: web::Data<AppState>,
    Visitor(user): Visitor,
    session: Session,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, WebError> {
    let Some(user) = user else {
        // Nothing changes yet (the cross-site check has run), so no token is needed: the add is
        // only remembered, and happens once this visitor proves who they are.
        let web::Form(form) = web::Form::<AddForm>::from_request(&req, &mut payload.into_inner())
            .await
            .map_err(|err| WebError::BadRequest(format!("The form is incomplete: {err}")))?;
        let book_id: BookId = form
            .book_id
            .trim()
            .parse()
            .map_err(|_| WebError::NotFound)?;
        session
            .insert(
                PENDING_ADD_KEY,
                PendingAdd {
                    book_id,
                    quantity: form.quantity,
                },
            )
            .map_err(WebError::internal)?;
        flash::info(
            &session,
            "Log in (or register) and the book goes into your cart.",
        );
        return Ok(see_other("/login?next=%2Fcart"));
    };
    let CsrfForm(form) = CsrfForm::<AddForm>::from_request(&req, &mut payload.into_inner()).await?;
    let book_id: BookId = form
        .book_id
        .trim()
        .parse()
        .map_err(|_| WebError::NotFound)?;
    add_for(&state, &session, user.id, book_id, &form.quantity).await?;
    match form.then.as_deref() {
        Some("cart") => Ok(see_other("/cart")),
        _ => Ok(see_other(&format!("/books/{book_id}"))),
    }
}

/// Adds copies for a logged-in user, with the flash message saying what happened; true when
/// the cart changed.
async fn add_for(
    state: &AppState,
    session: &Session,
    user_id: UserId,
    book_id: BookId,
    quantity: &str,
) -> Result<bool, WebError> {
    let change = match QuantityChange::parse(quantity) {
        Ok(change) => change,
        Err(message) => {
            flash::error(session, message);
            return Ok(false);
        }
    };
    let outcome = with_conn(state, move |conn| {
        Ok::<_, WebError>(cart::add_to_cart(conn, user_id, book_id, change))
    })
    .await?;
    match outcome {
        Ok(line) => {
            flash::success_with(
                session,
                format!(
                    "Added “{}” to your cart (you now have {}).",
                    line.title, line.quantity
                ),
                FlashAction::Link {
                    label: "View your cart".into(),
                    href: "/cart".into(),
                },
            );
            Ok(true)
        }
        Err(err) => {
            flash_cart_error(session, err)?;
            Ok(false)
        }
    }
}

/// Right after a log-in or registration: carries out an add made before it, if any. Returns
/// where to go then (the cart), or `None` when there was nothing pending.
pub async fn finish_pending_add(
    state: &AppState,
    session: &Session,
    user_id: UserId,
) -> Result<Option<String>, WebError> {
    let Some(Ok(pending)) = session.remove_as::<PendingAdd>(PENDING_ADD_KEY) else {
        return Ok(None);
    };
    add_for(state, session, user_id, pending.book_id, &pending.quantity).await?;
    Ok(Some("/cart".to_owned()))
}

#[derive(Deserialize)]
pub struct ChangeForm {
    change: String,
}

/// `POST /cart/items/{id}/change`: the + and - buttons.
pub async fn change(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    session: Session,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<ChangeForm>,
) -> Result<HttpResponse, WebError> {
    let line_id = line_id(&path)?;
    let change = QuantityChange::parse(&form.change).map_err(WebError::BadRequest)?;
    let outcome = with_conn(&state, move |conn| {
        Ok::<_, WebError>(cart::change_line(conn, user.id, line_id, change))
    })
    .await?;
    match outcome {
        Ok(line) => {
            flash::success(
                &session,
                format!("“{}”: {} in your cart.", line.title, copies(line.quantity)),
            );
            Ok(see_other("/cart"))
        }
        Err(err) => cart_error(&session, err, "/cart"),
    }
}

fn copies(quantity: i32) -> String {
    if quantity == 1 {
        "1 copy".to_owned()
    } else {
        format!("{quantity} copies")
    }
}

#[derive(Deserialize)]
pub struct SetForm {
    quantity: String,
}

/// `POST /cart/items/{id}/quantity`: the quantity field (0 takes the line out).
pub async fn set_quantity(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    session: Session,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<SetForm>,
) -> Result<HttpResponse, WebError> {
    let line_id = line_id(&path)?;
    let quantity = match LineQuantity::parse(&form.quantity) {
        Ok(quantity) => quantity,
        Err(message) => {
            flash::error(&session, format!("{message} Nothing was changed."));
            return Ok(see_other("/cart"));
        }
    };
    if quantity == LineQuantity::Remove {
        return remove_and_offer_undo(&state, &session, user.id, line_id).await;
    }
    let outcome = with_conn(&state, move |conn| {
        Ok::<_, WebError>(cart::set_line_quantity(conn, user.id, line_id, quantity))
    })
    .await?;
    match outcome {
        Ok(line) => {
            flash::success(
                &session,
                format!("“{}”: {} in your cart.", line.title, copies(line.quantity)),
            );
            Ok(see_other("/cart"))
        }
        // Too many to set: offer the most there is, as a button that sets it.
        Err(err @ CartError::AtMost { most, .. }) if most > 0 => {
            flash::error_with(
                &session,
                err.to_string(),
                FlashAction::Post {
                    label: format!("Set it to {most}"),
                    action: format!("/cart/items/{line_id}/quantity"),
                    fields: vec![("quantity".into(), most.to_string())],
                },
            );
            Ok(see_other("/cart"))
        }
        Err(err) => cart_error(&session, err, "/cart"),
    }
}

/// `POST /cart/items/{id}/remove`
pub async fn remove(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    session: Session,
    path: web::Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    let line_id = line_id(&path)?;
    remove_and_offer_undo(&state, &session, user.id, line_id).await
}

/// Takes a line out; the message offers to put the same copies back.
async fn remove_and_offer_undo(
    state: &AppState,
    session: &Session,
    user_id: UserId,
    line_id: CartLineId,
) -> Result<HttpResponse, WebError> {
    let outcome = with_conn(state, move |conn| {
        Ok::<_, WebError>(cart::remove_line(conn, user_id, line_id))
    })
    .await?;
    match outcome {
        Ok(removed) => {
            flash::success_with(
                session,
                format!("Removed “{}” from your cart.", removed.change.title),
                FlashAction::Post {
                    label: "Undo".into(),
                    action: "/cart/items".into(),
                    fields: vec![
                        ("book_id".into(), removed.book_id.to_string()),
                        ("quantity".into(), removed.quantity.to_string()),
                        ("then".into(), "cart".into()),
                    ],
                },
            );
            Ok(see_other("/cart"))
        }
        Err(err) => cart_error(session, err, "/cart"),
    }
}

fn line_id(path: &str) -> Result<CartLineId, WebError> {
    path.parse().map_err(|_| WebError::NotFound)
}

/// Rule violations go back to the page as a message; a line or book that is not there (or not
/// the user's) is a 404.
/// A refused cart change: a missing book or line is a 404, a broken rule a flash message.
fn flash_cart_error(session: &Session, err: CartError) -> Result<(), WebError> {
    match err {
        CartError::BookNotFound | CartError::LineNotFound => Err(WebError::NotFound),
        CartError::Database(err) => Err(err.into()),
        rule => {
            flash::error(session, rule.to_string());
            Ok(())
        }
    }
}

/// [`flash_cart_error`], then back to `back`.
fn cart_error(session: &Session, err: CartError, back: &str) -> Result<HttpResponse, WebError> {
    flash_cart_error(session, err)?;
    Ok(see_other(back))
}

#[derive(Deserialize)]
pub struct CheckoutForm {
    idempotency_key: String,
}

/// `POST /checkout`
pub async fn checkout(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    req: HttpRequest,
    session: Session,
    CsrfForm(form): CsrfForm<CheckoutForm>,
) -> Result<HttpResponse, WebError> {
    let key = Uuid::parse_str(form.idempotency_key.trim()).map_err(|_| {
        WebError::BadRequest("The checkout form is damaged; reload the cart.".into())
    })?;
    let user_id = user.id;
    let context = AuditContext::new(user.actor(), Some(client_address(&req)));
    let outcome = with_conn(&state, move |conn| {
        Ok::<_, WebError>(orders::checkout(conn, &context, user_id, key))
    })
    .await;
    monitoring::checkout(match &outcome {
        Ok(Ok((_, true))) => Checkout::Placed,
        Ok(Ok((_, false))) => Checkout::Repeated,
        Ok(Err(CheckoutError::EmptyCart)) => Checkout::EmptyCart,
        Ok(Err(CheckoutError::NotEnoughStock(_))) => Checkout::NotEnoughStock,
        Ok(Err(CheckoutError::TotalTooLarge)) => Checkout::TooLarge,
        Ok(Err(CheckoutError::Database(_))) | Err(_) => Checkout::Error,
    });
    match outcome? {
        Ok((order_id, placed)) => {
            if placed {
                flash::success(
                    &session,
                    format!("Thank you! Your order #{order_id} is placed."),
                );
            }
            Ok(see_other(&format!("/orders/{order_id}")))
        }
        Err(CheckoutError::EmptyCart) => {
            flash::info(&session, "Your cart is empty: add a book first.");
            Ok(see_other("/cart"))
        }
        Err(CheckoutError::NotEnoughStock(shortages)) => {
            // Extracted only here: the layout takes the pending flash messages with it.
            let mut layout = Layout::extract(&req).await?;
            layout.flashes.push(crate::web::flash::Flash {
                level: "error",
                text: "Not enough stock for the lines marked below: nothing was ordered and your \
                       cart is unchanged. Lower the quantities and check out again."
                    .into(),
                action: None,
                about: None,
            });
            let page = cart_page(&state, user_id, layout, &session, shortages).await?;
            Ok(html(StatusCode::CONFLICT, &page))
        }
        Err(err @ CheckoutError::TotalTooLarge) => {
            flash::error(
                &session,
                format!("{err} Split your cart into smaller orders."),
            );
            Ok(see_other("/cart"))
        }
        Err(CheckoutError::Database(err)) => Err(err.into()),
    }
}
