//! The mail staff look after: old mails and used or expired address links are purged by the
//! housekeeping, and a mail that failed can be sent again from `/admin/mail`.

use bookstore::{
    config::Config,
    db::schema::{email_confirmations, mails},
    housekeeping::{self, Keeping},
    mail::MailStatus,
};
use diesel::prelude::*;

use crate::{
    helpers::TestApp,
    mailbox::{Outbox, link_in, shop_writing_to_outbox},
};

/// Registers `login` (with `login@example.test`) and returns the path of the confirmation
/// link mailed to it.
async fn registered(app: &TestApp, outbox: &Outbox, login: &str) -> String {
    let visitor = app.another_browser();
    visitor.register(login, login, "a good long password").await;
    let mail = outbox
        .wait_for(app, &format!("To: {login} <{login}@example.test>"))
        .await;
    link_in(app, &mail, "/account/email/").replacen(&app.address, "", 1)
}

#[actix_web::test]
async fn the_housekeeping_purges_old_mails_and_dead_address_links_but_not_a_waiting_mail() {
    let (app, outbox) = shop_writing_to_outbox().await;
    let old_link = registered(&app, &outbox, "nora").await;
    registered(&app, &outbox, "omar").await;
    registered(&app, &outbox, "pia").await;
    // Nora's mail and link are long past; Omar's mail is as old but still waiting (its
    // server was away); Pia's are recent.
    app.db(|conn| {
        let long_ago = chrono::Utc::now() - chrono::Duration::days(40);
        for (to, status) in [
            ("nora@example.test", MailStatus::Sent),
            ("omar@example.test", MailStatus::Queued),
        ] {
            diesel::update(mails::table.filter(mails::recipient.eq(to)))
                .set((mails::created_at.eq(long_ago), mails::status.eq(status)))
                .execute(conn)
                .unwrap();
        }
        diesel::update(
            email_confirmations::table.filter(email_confirmations::email.eq("nora@example.test")),
        )
        .set(email_confirmations::expires_at.eq(long_ago))
        .execute(conn)
        .unwrap();
    })
    .await;
    let expired = app.get(&old_link).await;
    assert_eq!(expired.status(), 410);
    assert!(
        expired
            .text()
            .await
            .unwrap()
            .contains("This link has expired")
    );

    let purged = app
        .db(|conn| housekeeping::sweep(conn, &Keeping::from(&Config::default())).unwrap())
        .await;

    assert_eq!((purged.mails, purged.address_links), (1, 1));
    let staff = app.another_browser();
    staff.log_in_as("staff", "staff-runs-tasks").await;
    let page = staff.page("/admin/mail").await;
    assert!(!page.contains("nora@example.test"), "{page}");
    assert!(
        page.contains("omar@example.test") && page.contains("pia@example.test"),
        "{page}"
    );
    let gone = app.get(&old_link).await;
    assert_eq!(gone.status(), 404);
    assert!(
        gone.text()
            .await
            .unwrap()
            .contains("This is not a valid link")
    );
}
