//! actix-session's storage backend on our `sessions` table (see `domain::accounts::sessions`).
//! The cookie carries only the session token (a uuid v4).

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::{cookie::time::Duration as CookieDuration, web};

use crate::{
    db::PgPool,
    domain::accounts::sessions::{self, SessionPolicy, SessionState, SessionToken},
};

#[derive(Clone)]
pub struct PgSessionStore {
    pool: PgPool,
    policy: SessionPolicy,
}

impl PgSessionStore {
    pub fn new(pool: PgPool, policy: SessionPolicy) -> PgSessionStore {
        PgSessionStore { pool, policy }
    }

    /// Runs session SQL on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut diesel::PgConnection, &SessionPolicy) -> diesel::QueryResult<T>
        + Send
        + 'static,
    ) -> anyhow::Result<T> {
        let pool = self.pool.clone();
        let policy = self.policy;
        let work = web::block(move || -> anyhow::Result<T> {
            let mut conn = pool.get()?;
            Ok(work(&mut conn, &policy)?)
        });
        crate::web::within_deadline(work)
            .await
            .map_err(anyhow::Error::from)??
    }
}

fn token_of(key: &SessionKey) -> Option<SessionToken> {
    SessionToken::parse(key.as_ref())
}

fn key_of(token: SessionToken) -> SessionKey {
    SessionKey::try_from(token.to_text()).expect("64 hex digits are a valid session key")
}

impl SessionStore for PgSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        // A key that is not one of our tokens is no session, not an error.
        let Some(token) = token_of(key) else {
            return Ok(None);
        };
        self.run(move |conn, policy| sessions::load(conn, policy, &token))
            .await
            .map_err(LoadError::Other)
    }

    async fn save(
        &self,
        state: SessionState,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        self.run(move |conn, policy| sessions::create(conn, policy, &state))
            .await
            .map(key_of)
            .map_err(SaveError::Other)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: SessionState,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let Some(token) = token_of(&key) else {
            return Ok(key);
        };
        self.run(move |conn, _| sessions::update(conn, &token, &state))
            .await
            .map_err(UpdateError::Other)?;
        Ok(key)
    }

    async fn update_ttl(&self, _key: &SessionKey, _ttl: &CookieDuration) -> anyhow::Result<()> {
        // Expiry is ours (absolute lifetime plus idle timeout, slid in `load`), not the cookie's.
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        let Some(token) = token_of(key) else {
            return Ok(());
        };
        self.run(move |conn, _| sessions::delete(conn, &token))
            .await
    }
}
