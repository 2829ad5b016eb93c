//! The token cache: one token shared by all workers, refreshed ahead of expiry by a single request
//! (concurrent callers wait for it), and dropped once after a 401 however many workers saw it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::http::HttpOptions;
use super::secret::AccessToken;
use super::settings::Settings;
use super::token::{AuthError, Token, TokenSource};

/// Refresh when less than this much of a token's life remains (Microsoft's clients use 5 minutes)...
pub const REFRESH_AHEAD: Duration = Duration::from_secs(300);

/// ...or, for short-lived tokens, when less than 1/`REFRESH_FRACTION` (10%) of its lifetime remains.
pub const REFRESH_FRACTION: u32 = 10;

/// The time of day: the seam through which the cache (and assertions) read the clock.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Something that obtains a new token: [`TokenSource`] in production, a fake in tests.
pub trait FetchToken: Send + Sync {
    /// Gets a new token; `now` is the injected clock's time when the request starts.
    fn fetch(&self, now: SystemTime) -> impl Future<Output = Result<Token, AuthError>> + Send;
}

/// Whether a token is due for refresh at `now`: less than min(5 min, 10% of its lifetime) remains.
pub fn needs_refresh(token: &Token, now: SystemTime) -> bool {
    let Some(expires_at) = token.expires_at else {
        return false;
    };
    let lifetime = expires_at
        .duration_since(token.issued_at)
        .unwrap_or_default();
    let margin = REFRESH_AHEAD.min(lifetime / REFRESH_FRACTION);
    match expires_at.duration_since(now) {
        Ok(remaining) => remaining <= margin,
        Err(_) => true,
    }
}

/// Whether a token can still be used at `now` (not yet expired).
fn still_valid(token: &Token, now: SystemTime) -> bool {
    token.expires_at.is_none_or(|at| now < at)
}

#[derive(Default)]
struct State {
    token: Option<Token>,
    last_error: Option<AuthError>,
    static_rejected: bool,
}

/// Hands out a valid access token to any number of concurrent workers.
///
/// * The token is cached and refreshed when less than min(5 min, 10% of its lifetime) remains.
/// * Single flight: callers that find the token due wait on one refresh (a `tokio` mutex) and share
///   its result, success or failure.
/// * If a refresh fails while the old token is still valid, the old token is handed out.
/// * After a 401, [`TokenProvider::invalidate`] with the refused token drops it only if it is still
///   the cached one, so N workers refused at once cause one refresh.
pub struct TokenProvider<F: FetchToken = TokenSource> {
    fetcher: F,
    clock: Arc<dyn Clock>,
    state: tokio::sync::Mutex<State>,
    failures: AtomicU64,
}

impl<F: FetchToken> fmt::Debug for TokenProvider<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("failures", &self.failures.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TokenProvider<TokenSource> {
    /// A provider for the settings (loads the certificate and builds the HTTP client now).
    pub fn from_settings(settings: &Settings, options: &HttpOptions) -> Result<Self, AuthError> {
        Ok(TokenProvider::new(TokenSource::from_settings(
            settings, options,
        )?))
    }
}

impl<F: FetchToken> TokenProvider<F> {
    /// A provider on the real clock.
    pub fn new(fetcher: F) -> Self {
        TokenProvider::with_clock(fetcher, Arc::new(SystemClock))
    }

    /// A provider on an injected clock (tests).
    pub fn with_clock(fetcher: F, clock: Arc<dyn Clock>) -> Self {
        TokenProvider {
            fetcher,
            clock,
            state: tokio::sync::Mutex::new(State::default()),
            failures: AtomicU64::new(0),
        }
    }

    /// A token valid now, from the cache or from one refresh shared with concurrent callers.
    pub async fn get(&self) -> Result<AccessToken, AuthError> {
        let failures_seen = self.failures.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if state.static_rejected {
            return Err(AuthError::StaticTokenRejected);
        }
        let now = self.clock.now();
        if let Some(token) = &state.token {
            if !needs_refresh(token, now) {
                return Ok(token.access_token.clone());
            }
        }
        // A refresh failed while this caller waited for the lock: share its outcome, do not repeat it.
        if self.failures.load(Ordering::Acquire) != failures_seen {
            if let Some(e) = &state.last_error {
                return match &state.token {
                    Some(token) if still_valid(token, now) => Ok(token.access_token.clone()),
                    _ => Err(e.clone()),
                };
            }
        }
        match self.fetcher.fetch(now).await {
            Ok(token) => {
                let access = token.access_token.clone();
                tracing::debug!(expires_at = ?token.expires_at, "access token obtained");
                state.token = Some(token);
                state.last_error = None;
                Ok(access)
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::AcqRel);
                state.last_error = Some(e.clone());
                match &state.token {
                    Some(token) if still_valid(token, now) => {
                        tracing::warn!(error = %e, "token refresh failed; using the current token until it expires");
                        Ok(token.access_token.clone())
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// Drops the cached token if it is still `refused` (a request with it got 401), so that the next
    /// [`TokenProvider::get`] fetches a new one. A ready (non-refreshable) token cannot be replaced:
    /// later calls to `get` fail with [`AuthError::StaticTokenRejected`].
    pub async fn invalidate(&self, refused: &AccessToken) {
        let mut state = self.state.lock().await;
        let Some(token) = &state.token else { return };
        if &token.access_token != refused {
            return; // already replaced by another worker's refresh
        }
        if token.refreshable {
            state.token = None;
        } else {
            state.static_rejected = true;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::UNIX_EPOCH;

    /// A clock the test moves by hand.
    pub(crate) struct FakeClock(Mutex<SystemTime>);

    impl FakeClock {
        pub fn new() -> Arc<FakeClock> {
            Arc::new(FakeClock(Mutex::new(
                UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            )))
        }
        pub fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
    }

    /// Issues `tok-1`, `tok-2`, ... with a fixed lifetime, after a (paused-clock) delay; counts calls.
    struct FakeFetcher {
        calls: AtomicUsize,
        lifetime: Duration,
        delay: Duration,
        fail: Mutex<Option<AuthError>>,
    }

    impl FakeFetcher {
        fn new(lifetime: Duration) -> Self {
            FakeFetcher {
                calls: AtomicUsize::new(0),
                lifetime,
                delay: Duration::from_millis(50),
                fail: Mutex::new(None),
            }
        }
    }

    impl FetchToken for Arc<FakeFetcher> {
        async fn fetch(&self, now: SystemTime) -> Result<Token, AuthError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            if let Some(e) = self.fail.lock().unwrap().clone() {
                return Err(e);
            }
            Ok(Token {
                access_token: AccessToken::new(format!("tok-{n}")),
                issued_at: now,
                expires_at: Some(now + self.lifetime),
                refreshable: true,
            })
        }
    }

    fn provider(
        lifetime: Duration,
    ) -> (
        Arc<TokenProvider<Arc<FakeFetcher>>>,
        Arc<FakeFetcher>,
        Arc<FakeClock>,
    ) {
        let fetcher = Arc::new(FakeFetcher::new(lifetime));
        let clock = FakeClock::new();
        let provider = Arc::new(TokenProvider::with_clock(fetcher.clone(), clock.clone()));
        (provider, fetcher, clock)
    }

    fn token(issued: u64, expires: u64) -> Token {
        Token {
            access_token: AccessToken::new("t"),
            issued_at: UNIX_EPOCH + Duration::from_secs(issued),
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(expires)),
            refreshable: true,
        }
    }

    #[test]
    fn refresh_margin() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        // One hour: refresh in the last 5 minutes.
        let t = token(0, 3600);
        assert!(!needs_refresh(&t, at(3299)));
        assert!(needs_refresh(&t, at(3300)));
        assert!(needs_refresh(&t, at(4000)));
        // 20 seconds: refresh in the last 2 seconds (10%).
        let t = token(0, 20);
        assert!(!needs_refresh(&t, at(17)));
        assert!(needs_refresh(&t, at(18)));
        // No expiry: never.
        let t = Token {
            expires_at: None,
            ..token(0, 0)
        };
        assert!(!needs_refresh(&t, at(u32::MAX as u64)));
    }

    #[tokio::test(start_paused = true)]
    async fn cached_then_refreshed_ahead_of_expiry() {
        let (p, fetcher, clock) = provider(Duration::from_secs(3599));
        assert_eq!(p.get().await.unwrap().expose(), "tok-1");
        clock.advance(Duration::from_secs(3000));
        assert_eq!(p.get().await.unwrap().expose(), "tok-1");
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(300)); // 299 s left < 5 min
        assert_eq!(p.get().await.unwrap().expose(), "tok-2");
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
        clock.advance(Duration::from_secs(60));
        assert_eq!(p.get().await.unwrap().expose(), "tok-2");
    }

    #[tokio::test(start_paused = true)]
    async fn short_lived_token_refreshed_at_ten_percent() {
        let (p, fetcher, clock) = provider(Duration::from_secs(5));
        assert_eq!(p.get().await.unwrap().expose(), "tok-1");
        clock.advance(Duration::from_millis(4400)); // 0.6 s left > 0.5 s
        assert_eq!(p.get().await.unwrap().expose(), "tok-1");
        clock.advance(Duration::from_millis(200)); // 0.4 s left
        assert_eq!(p.get().await.unwrap().expose(), "tok-2");
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn single_flight() {
        let (p, fetcher, clock) = provider(Duration::from_secs(3599));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                tokio::spawn({
                    let p = p.clone();
                    async move { p.get().await }
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().expose(), "tok-1");
        }
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1);
        // Due for refresh: again one request for all.
        clock.advance(Duration::from_secs(3400));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                tokio::spawn({
                    let p = p.clone();
                    async move { p.get().await }
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().expose(), "tok-2");
        }
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_once_for_many_401s() {
        let (p, fetcher, _clock) = provider(Duration::from_secs(3599));
        let refused = p.get().await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let p = p.clone();
                let refused = refused.clone();
                tokio::spawn(async move {
                    p.invalidate(&refused).await;
                    p.get().await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().expose(), "tok-2");
        }
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
        // A late 401 with the old token does not drop the new one.
        p.invalidate(&refused).await;
        assert_eq!(p.get().await.unwrap().expose(), "tok-2");
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
        // Invalidating the current token does.
        p.invalidate(&AccessToken::new("tok-2")).await;
        assert_eq!(p.get().await.unwrap().expose(), "tok-3");
    }

    fn network_error() -> AuthError {
        AuthError::Unreachable {
            url: "http://127.0.0.1:9/t".into(),
            reason: "connection refused".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_refresh_is_shared_and_old_token_kept_while_valid() {
        let (p, fetcher, clock) = provider(Duration::from_secs(3599));
        *fetcher.fail.lock().unwrap() = Some(network_error());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                tokio::spawn({
                    let p = p.clone();
                    async move { p.get().await }
                })
            })
            .collect();
        for t in tasks {
            assert!(matches!(
                t.await.unwrap(),
                Err(AuthError::Unreachable { .. })
            ));
        }
        assert_eq!(
            fetcher.calls.load(Ordering::SeqCst),
            1,
            "waiters share the failure"
        );
        // A later call tries again.
        *fetcher.fail.lock().unwrap() = None;
        assert_eq!(p.get().await.unwrap().expose(), "tok-2");
        // Refresh due but failing: the old token is still valid, so it is handed out.
        clock.advance(Duration::from_secs(3400));
        *fetcher.fail.lock().unwrap() = Some(network_error());
        assert_eq!(p.get().await.unwrap().expose(), "tok-2");
        // Once it has expired, the error comes through.
        clock.advance(Duration::from_secs(300));
        assert!(matches!(p.get().await, Err(AuthError::Unreachable { .. })));
    }

    #[tokio::test]
    async fn static_token_is_never_refreshed_and_refusal_is_final() {
        let p = TokenProvider::with_clock(
            TokenSource::Static(AccessToken::new("ready")),
            FakeClock::new(),
        );
        assert_eq!(p.get().await.unwrap().expose(), "ready");
        p.invalidate(&AccessToken::new("other")).await;
        assert_eq!(p.get().await.unwrap().expose(), "ready");
        p.invalidate(&AccessToken::new("ready")).await;
        let e = p.get().await.unwrap_err();
        assert!(matches!(e, AuthError::StaticTokenRejected), "{e:?}");
        assert!(e.explain().contains("DATAVERSE_ACCESS_TOKEN"));
    }
}
