//! The mail staff look after: old mails and used or expired address links are purged by the
//! housekeeping, and a mail that failed can be sent again from `/admin/mail`.

use bookstore::{
    config::Config,
    db::schema::{email_confirmations, mails},
    housekeeping::{self, Keeping},
    ids::{MailId, TaskId},
    mail::MailStatus,
};
use diesel::prelude::*;

use crate::{
    helpers::{TestApp, assert_is_redirect_to, wait_until},
    mailbox::{Outbox, SmtpSink, link_in, shop_mailing_to, shop_writing_to_outbox},
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

/// The mail to `address`: its number, status, attempts and task.
async fn mail_to(app: &TestApp, address: &'static str) -> (MailId, MailStatus, i32, TaskId) {
    app.db(move |conn| {
        let (id, status, attempts, task) = mails::table
            .filter(mails::recipient.eq(address))
            .select((mails::id, mails::status, mails::attempts, mails::task_id))
            .first::<(MailId, MailStatus, i32, Option<TaskId>)>(conn)
            .unwrap();
        (id, status, attempts, task.unwrap())
    })
    .await
}

#[actix_web::test]
async fn staff_send_again_a_mail_whose_task_ended_and_it_arrives_once() {
    let mut sink = SmtpSink::reserve();
    let app = shop_mailing_to(&sink).await;
    let visitor = app.another_browser();
    let forgot = [("who", "alice")];
    visitor
        .submit("/password-forgotten", "/password-forgotten", &forgot)
        .await;
    wait_until(30, "a failed attempt while the server is down", || async {
        mail_to(&app, "alice@example.com").await.2 >= 1
    })
    .await;
    let (mail, _, _, first_task) = mail_to(&app, "alice@example.com").await;
    let staff = app.another_browser();
    staff.log_in_as("staff", "staff-runs-tasks").await;
    let retry = format!("/admin/mail/{mail}/retry");

    // While its task still retries, there is nothing to send again.
    let page = staff.page("/admin/mail").await;
    assert!(
        page.contains("retrying") && !page.contains(&retry),
        "{page}"
    );
    let early = staff.submit("/admin/mail", &retry, &[]).await;
    assert_is_redirect_to(&early, "/admin/mail");
    let page = staff.page("/admin/mail").await;
    assert!(
        page.contains(&format!("is being sent already (task {first_task})")),
        "{page}"
    );

    // Staff stop its task; the mail can be sent again once the server is back.
    let task_page = format!("/admin/tasks/{first_task}");
    staff
        .submit(&task_page, &format!("{task_page}/cancel"), &[])
        .await;
    wait_until(30, "the sending task ended", || async {
        app.task_status(first_task).await == "cancelled"
    })
    .await;
    let page = staff.page("/admin/mail").await;
    assert!(page.contains(&retry), "{page}");
    sink.start().await;
    let again = staff.submit("/admin/mail", &retry, &[]).await;
    assert_is_redirect_to(&again, "/admin/mail");
    assert!(
        staff
            .page("/admin/mail")
            .await
            .contains(&format!("Mail #{mail} is queued again"))
    );
    let received = sink.wait_for(&app, "alice@example.com", 1).await;
    assert!(received[0].contains("password-reset"), "{}", received[0]);

    // Sent: never again, however staff ask.
    let late = staff.submit("/admin/mail", &retry, &[]).await;
    assert_is_redirect_to(&late, "/admin/mail");
    let page = staff.page("/admin/mail").await;
    assert!(page.contains("it was sent already"), "{page}");
    assert!(!page.contains(&retry), "{page}");
    assert_eq!(sink.to("alice@example.com").len(), 1, "sent once");
    let forged = staff.post_form(&retry, &[("csrf_token", "forged")]).await;
    assert_eq!(forged.status(), 403);
    let audit = staff.page("/admin/audit").await;
    assert!(
        audit.contains("mail.retried") && audit.contains(&format!("mail {mail}")),
        "{audit}"
    );
}
