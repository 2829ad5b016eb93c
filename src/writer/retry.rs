//! The retry rules every request dvload sends follows — `$batch` writes, read-backs, `WhoAmI`,
//! the environment's metadata, the first token — and [`Retry`], the driver that applies them to
//! one request: a throttle (429) is waited out as the service asks (`Retry-After` in seconds or
//! as an HTTP date, `odata::retry_after_at`), capped, and is not a failure; a transient failure
//! (no answer, 408, 5xx) backs off, or pauses as its `Retry-After` asks (capped), up to
//! `max_attempts`; a refused token is replaced at once, up to [`MAX_TOKEN_REFUSALS`] in a row;
//! nothing is retried past `max_elapsed`. The batch loop (`send.rs`) decides per operation
//! (`decide.rs`) and takes its pauses and token rule from here.

use std::time::{Duration, Instant};

/// How hard the writer tries before it rejects an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per operation, the first included.
    pub max_attempts: u32,
    /// Time after an operation's first attempt past which it is not retried again.
    pub max_elapsed: Duration,
    /// First backoff delay (doubled at each attempt, with jitter).
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Pause after a 429 that carries no `Retry-After`.
    pub default_throttle: Duration,
    /// Longest pause a `Retry-After` is honoured for: the 300 s service protection window,
    /// after which every limit has reset (api-limits.md, PROTOCOL.md §10).
    pub max_throttle: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts within 15 minutes, backoff from 1 s doubling up to 60 s, and a 5 s pause after a
    /// 429 without `Retry-After` (Microsoft's ServiceClient waits `RetryPauseTime` = 5 s,
    /// PROTOCOL.md §10.2). Service protection windows are 300 s, so 15 minutes rides out several.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_elapsed: Duration::from_secs(15 * 60),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            default_throttle: Duration::from_secs(5),
            max_throttle: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1` (0-based `attempt` just failed); `jitter` in
    /// `[0, 1)` spreads workers apart ("equal jitter": half fixed, half random).
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(20));
        let capped = exp.min(self.max_delay);
        capped.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// The pause a throttled request (429) waits: its `Retry-After`, or the policy's default when
/// it gave none, never longer than `max_throttle`.
pub fn throttle_pause(policy: &RetryPolicy, retry_after: Option<Duration>) -> Duration {
    retry_after
        .unwrap_or(policy.default_throttle)
        .min(policy.max_throttle)
}

/// The pause after the `failures`-th transient failure in a row (1 for the first): the
/// `Retry-After` the answer asked for (capped by `max_delay`), else the backoff.
pub fn failure_pause(
    policy: &RetryPolicy,
    failures: u32,
    retry_after: Option<Duration>,
) -> Duration {
    retry_after.map_or_else(
        || policy.backoff(failures.saturating_sub(1), rand::random::<f64>()),
        |d| d.min(policy.max_delay),
    )
}

/// Refusals (401) in a row of one batch, with tokens Dataverse never accepted, after which the
/// run stops: new tokens refused as soon as they are issued mean the set-up is wrong (the
/// application user was removed, or the tokens are for another environment). A refused token
/// that was accepted before expired or was revoked: it is refreshed and does not count.
pub const MAX_TOKEN_REFUSALS: u32 = 3;

/// What to do after Dataverse refused a batch's token (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefused {
    /// Get a new token and resend at once.
    Refresh,
    /// Stop the run: the set-up, not the token, is wrong.
    Stop,
}

/// Decides on a 401, given how many attempts of this batch in a row were refused with a token
/// never accepted, this one included. An accepted attempt starts the count again: over a long
/// run every token expires in turn, and a batch may meet several of those expiries.
pub fn token_refused(in_a_row: u32) -> TokenRefused {
    if in_a_row >= MAX_TOKEN_REFUSALS {
        TokenRefused::Stop
    } else {
        TokenRefused::Refresh
    }
}

/// HTTP statuses worth another attempt (PROTOCOL.md §10, §15).
pub fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// What to do after an attempt, by the rules above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this pause.
    Wait(Duration),
    /// Try again at once (a new token).
    Now,
    /// Give up: the last answer (or failure) is the result.
    GiveUp,
}

/// The retries of one request (the batch loop keeps the same counts per operation).
#[derive(Debug)]
pub struct Retry {
    policy: RetryPolicy,
    start: Instant,
    failures: u32,
    refusals: u32,
}

impl Retry {
    /// A request about to be sent for the first time.
    pub fn new(policy: &RetryPolicy) -> Retry {
        Retry {
            policy: *policy,
            start: Instant::now(),
            failures: 0,
            refusals: 0,
        }
    }

    fn out_of_time(&self) -> bool {
        self.start.elapsed() >= self.policy.max_elapsed
    }

    /// The attempt was throttled: wait as asked; not a failure.
    pub fn throttled(&mut self, retry_after: Option<Duration>) -> Next {
        if self.out_of_time() {
            return Next::GiveUp;
        }
        Next::Wait(throttle_pause(&self.policy, retry_after))
    }

    /// The attempt failed in a way worth another (no answer, 408, 5xx).
    pub fn failed(&mut self, retry_after: Option<Duration>) -> Next {
        self.failures += 1;
        if self.failures >= self.policy.max_attempts.max(1) || self.out_of_time() {
            return Next::GiveUp;
        }
        Next::Wait(failure_pause(&self.policy, self.failures, retry_after))
    }

    /// The attempt's token was refused (401): a new one is tried at once, a few times in a row.
    pub fn token_refused(&mut self) -> Next {
        self.refusals += 1;
        match token_refused(self.refusals) {
            TokenRefused::Refresh => Next::Now,
            TokenRefused::Stop => Next::GiveUp,
        }
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_is_refreshed_until_refusals_in_a_row_show_the_setup_is_wrong() {
        // The bug this guards against: a batch stopped the run ("Dataverse refused a freshly
        // issued token") the second time it met a 401 in its life, even when the new token had
        // been accepted and then revoked or expired in turn.
        assert_eq!(
            token_refused(1),
            TokenRefused::Refresh,
            "expired or revoked in use"
        );
        assert_eq!(
            token_refused(2),
            TokenRefused::Refresh,
            "the new token may have been revoked in turn"
        );
        assert_eq!(token_refused(MAX_TOKEN_REFUSALS), TokenRefused::Stop);
        assert_eq!(token_refused(MAX_TOKEN_REFUSALS + 1), TokenRefused::Stop);
        let mut retry = Retry::new(&RetryPolicy::default());
        assert_eq!(retry.token_refused(), Next::Now);
        assert_eq!(retry.token_refused(), Next::Now);
        assert_eq!(retry.token_refused(), Next::GiveUp);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(0, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(3, 1.0), Duration::from_secs(8));
        assert_eq!(p.backoff(30, 1.0), Duration::from_secs(60));
    }

    #[test]
    fn throttles_wait_as_asked_and_do_not_count_as_failures() {
        let policy = RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        };
        let mut retry = Retry::new(&policy);
        for _ in 0..10 {
            assert_eq!(
                retry.throttled(Some(Duration::from_secs(7))),
                Next::Wait(Duration::from_secs(7))
            );
        }
        assert_eq!(retry.throttled(None), Next::Wait(policy.default_throttle));
        assert_eq!(
            retry.throttled(Some(Duration::from_secs(3600))),
            Next::Wait(policy.max_throttle),
            "capped at the service protection window"
        );
        // A Retry-After on a transient failure is honoured up to max_delay.
        assert_eq!(
            retry.failed(Some(Duration::from_secs(3600))),
            Next::Wait(policy.max_delay)
        );
        assert_eq!(retry.failed(None), Next::GiveUp, "max_attempts failures");
        let out_of_time = RetryPolicy {
            max_elapsed: Duration::ZERO,
            ..RetryPolicy::default()
        };
        let mut retry = Retry::new(&out_of_time);
        assert_eq!(retry.throttled(None), Next::GiveUp);
        assert_eq!(retry.failed(None), Next::GiveUp);
    }
}
