//! The state shared by every request handler.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::auth::AppUser;
use crate::catalog::Catalog;
use crate::changes::Stage;
use crate::config::Config;
use crate::entra::assertion::RegisteredCert;
use crate::entra::tokens::{AccessClaims, TokenIssuer};
use crate::faults::Faults;
use crate::limits::Limits;
use crate::state::Store;
use crate::stats::Stats;

/// Everything a handler needs.
#[derive(Debug)]
pub struct Shared {
    /// The configuration the emulator started with.
    pub config: Config,
    /// Validated table catalogue.
    pub catalog: Arc<Catalog>,
    /// `http(s)://127.0.0.1:PORT`: organization URL and authority host.
    pub base_url: String,
    /// Rows.
    pub store: Mutex<Store>,
    /// Token signer.
    pub issuer: TokenIssuer,
    /// Application users by lower-cased app id.
    pub users: HashMap<String, AppUser>,
    /// Registered certificates by lower-cased client id.
    pub certs: HashMap<String, Vec<RegisteredCert>>,
    /// Counters.
    pub stats: Stats,
    /// Service protection limits.
    pub limits: Arc<Limits>,
    /// Fault injection.
    pub faults: Faults,
    /// Token lifetime in seconds (settable at runtime).
    pub token_lifetime: Mutex<u64>,
    /// The environment as `config.changes` change it, in order.
    pub stages: Vec<Stage>,
    revoked: Mutex<HashSet<String>>,
    issued: Mutex<Vec<String>>,
    token_cache: Mutex<HashMap<String, AccessClaims>>,
}

impl Shared {
    /// Builds the shared state; fails on an inconsistent configuration.
    pub fn new(config: Config, base_url: String) -> Result<Self, String> {
        let catalog = Arc::new(Catalog::build(&config)?);
        let users = crate::auth::build_users(&config)?;
        let stages = crate::changes::stages(&config)?;
        let mut certs: HashMap<String, Vec<RegisteredCert>> = HashMap::new();
        for app in &config.apps {
            for c in &app.certificates {
                let pem = match (&c.pem, &c.pem_file) {
                    (Some(p), _) => p.clone(),
                    (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| {
                        format!("app '{}': certificate file '{f}': {e}", app.client_id)
                    })?,
                    (None, None) => {
                        return Err(format!(
                            "app '{}': a certificate needs 'pem' or 'pem_file'",
                            app.client_id
                        ));
                    }
                };
                let cert = RegisteredCert::from_pem(&pem)
                    .map_err(|e| format!("app '{}': {e}", app.client_id))?;
                certs
                    .entry(app.client_id.to_lowercase())
                    .or_default()
                    .push(cert);
            }
            for s in &app.secrets {
                if let Some(exp) = &s.expires {
                    exp.parse::<jiff::Timestamp>().map_err(|e| {
                        format!(
                            "app '{}': secret expiry '{exp}' is not RFC 3339: {e}",
                            app.client_id
                        )
                    })?;
                }
            }
        }
        let mut store = Store::new(catalog.clone(), config.seed);
        store.set_language(config.organization.language_code);
        crate::records::seed(&mut store, &catalog, &config)?;
        Ok(Shared {
            store: Mutex::new(store),
            catalog,
            base_url,
            issuer: TokenIssuer::new(),
            users,
            certs,
            stats: Stats::default(),
            limits: Arc::new(Limits::new(config.limits.clone())),
            faults: Faults::new(config.faults.clone(), config.seed),
            token_lifetime: Mutex::new(config.tokens.lifetime_secs),
            stages,
            revoked: Mutex::new(HashSet::new()),
            issued: Mutex::new(Vec::new()),
            token_cache: Mutex::new(HashMap::new()),
            config,
        })
    }

    /// Locks the store (a poisoned lock is recovered: the store has no invariants a panic in
    /// another request could break halfway, since every write is a single map operation).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stage of `config.changes` the next request sees (none before the first change).
    pub fn stage(&self) -> Option<&Stage> {
        let batches = self
            .stats
            .batches
            .load(std::sync::atomic::Ordering::Relaxed);
        self.stages
            .iter()
            .rev()
            .find(|s| s.after_batches <= batches)
    }

    /// Revokes the token with unique id `uti`.
    pub fn revoke(&self, uti: &str) {
        self.revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uti.to_string());
    }

    /// Revokes every token issued so far.
    pub fn revoke_all(&self) {
        let issued = std::mem::take(&mut *self.issued.lock().unwrap_or_else(|e| e.into_inner()));
        self.revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(issued);
    }

    /// Records an issued token id (for [`Shared::revoke_all`]).
    pub fn record_issued(&self, uti: &str) {
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(uti.to_string());
    }

    /// Whether token `uti` is revoked.
    pub fn is_revoked(&self, uti: &str) -> bool {
        let r = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        r.contains(uti)
    }

    pub(crate) fn token_cache_get(&self, token: &str) -> Option<AccessClaims> {
        self.token_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }

    pub(crate) fn token_cache_put(&self, token: &str, claims: &AccessClaims) {
        let mut c = self.token_cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() > 10_000 {
            c.clear();
        }
        c.insert(token.to_string(), claims.clone());
    }
}
