//! The HTTP(S) server: routes, the Web API request pipeline (auth → faults → limits → execute),
//! the accept loop that can really drop a connection, and the in-process handle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::auth::{self, Refusal};
use crate::config::{Config, FaultsConfig, LimitsConfig};
use crate::error::{ApiError, OpResponse};
use crate::faults::Fault;
use crate::shared::Shared;
use crate::state::Record;
use crate::stats::{Stats, StatsSnapshot};
use crate::webapi::{self, Ctx, OpRequest};

/// Error starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Configuration inconsistent.
    #[error("invalid config: {0}")]
    Config(String),
    /// Binding or TLS set-up failed.
    #[error("{0}")]
    Io(String),
}

/// How to serve.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Port on 127.0.0.1; 0 = any free port.
    pub port: u16,
    /// PEM certificate chain and key: serve HTTPS.
    pub tls: Option<TlsFiles>,
    /// Persist rows to this file (loaded at start, written atomically).
    pub data_file: Option<std::path::PathBuf>,
}

/// TLS certificate and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: std::path::PathBuf,
    /// PEM private key.
    pub key: std::path::PathBuf,
}

/// A connection's kill switch, put into each request's extensions.
#[derive(Clone)]
struct KillSwitch(Arc<Notify>);

/// Read access to the emulator's rows, for tests.
#[derive(Clone, Debug)]
pub struct StateView {
    shared: Arc<Shared>,
}

impl StateView {
    /// Rows in table `logical` (0 for an unknown table).
    pub fn count(&self, logical: &str) -> usize {
        self.shared.store().count(logical)
    }

    /// Row `id` of table `logical`.
    pub fn get(&self, logical: &str, id: uuid::Uuid) -> Option<Record> {
        self.shared.store().get(logical, &id).cloned()
    }

    /// All rows of table `logical` in creation order.
    pub fn rows(&self, logical: &str) -> Vec<Record> {
        self.shared
            .store()
            .rows(logical)
            .into_iter()
            .cloned()
            .collect()
    }
}

/// A running emulator. Dropping it does not stop it; call [`RunningEmulator::shutdown`].
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Read access to rows.
    pub state: StateView,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT` (or https): the organization URL and the authority host.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Replaces the fault configuration at runtime.
    pub fn set_faults(&self, faults: FaultsConfig) {
        self.shared.faults.set(faults);
    }

    /// Execution time charged against the service protection limits so far, in milliseconds.
    pub fn charged_exec_ms(&self) -> u64 {
        self.shared.limits.charged_ms()
    }

    /// Replaces the limits at runtime.
    pub fn set_limits(&self, limits: LimitsConfig) {
        self.shared.limits.set(limits);
    }

    /// Sets the lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, secs: u64) {
        *self
            .shared
            .token_lifetime
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = secs;
    }

    /// Revokes every token issued so far (the next Web API call with one answers 401).
    pub fn revoke_all_tokens(&self) {
        self.shared.revoke_all();
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), persists `--data`.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

fn header_pairs(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn to_http(r: OpResponse, dop_hint: u32) -> Response<Body> {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    for (n, v) in r.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(n.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            h.append(n, v);
        }
    }
    // send-parallel-requests.md: every response carries the recommended parallelism.
    h.insert("x-ms-dop-hint", HeaderValue::from(dop_hint));
    resp
}

async fn kill(req_kill: Option<KillSwitch>) -> Response<Body> {
    if let Some(k) = req_kill {
        k.0.notify_one();
    }
    // The connection task drops this future together with the connection.
    std::future::pending::<()>().await;
    Response::new(Body::empty())
}

/// `/api/data/{version}/{*path}`: the Web API pipeline.
async fn web_api(
    State(shared): State<Arc<Shared>>,
    Path((version, path)): Path<(String, String)>,
    req: Request,
) -> Response<Body> {
    handle(shared, version, path, req).await
}

async fn web_api_root(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    req: Request,
) -> Response<Body> {
    handle(shared, version, String::new(), req).await
}

async fn handle(
    shared: Arc<Shared>,
    version: String,
    path: String,
    req: Request,
) -> Response<Body> {
    Stats::inc(&shared.stats.requests);
    let dop = shared.limits.config().dop_hint;
    let killer = req.extensions().get::<KillSwitch>().cloned();
    let (parts, body) = req.into_parts();
    let raw_path = parts.uri.path().to_string();
    // Use the raw (still percent-encoded) path below the version segment.
    let prefix = format!("/api/data/{version}/");
    let path = raw_path
        .strip_prefix(&prefix)
        .map(str::to_string)
        .unwrap_or(path);
    let query = parts.uri.query().unwrap_or("").to_string();
    let headers = header_pairs(&parts.headers);
    if !matches!(version.as_str(), "v9.0" | "v9.1" | "v9.2") {
        return to_http(ApiError::resource_not_found(&version).into_response(), dop);
    }
    // 1. Authentication.
    let authz = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let (claims, mut user) = match auth::authenticate(&shared, authz) {
        Ok(x) => x,
        Err(Refusal::Unauthorized) => {
            Stats::inc(&shared.stats.unauthorized);
            return to_http(auth::challenge(&shared), dop);
        }
        Err(Refusal::Forbidden(e)) => {
            Stats::inc(&shared.stats.forbidden);
            return to_http(e.into_response(), dop);
        }
    };
    // 2. Faults decided before anything is applied.
    let plan = shared.faults.draw();
    if plan.latency_ms > 0 {
        Stats::inc(&shared.stats.fault_latency);
        tokio::time::sleep(Duration::from_millis(plan.latency_ms)).await;
    }
    let fcfg = shared.faults.get();
    let retry_after = fcfg.throttle_retry_after_secs.max(1);
    match plan.fault {
        Fault::Revoke => {
            Stats::inc(&shared.stats.fault_revoked);
            shared.revoke(&claims.uti);
            Stats::inc(&shared.stats.unauthorized);
            return to_http(auth::challenge(&shared), dop);
        }
        Fault::Fail(status) => {
            Stats::inc(match status {
                500 => &shared.stats.fault_500,
                502 => &shared.stats.fault_502,
                _ => &shared.stats.fault_503,
            });
            let e = ApiError::new(
                status,
                "0x80040216",
                "An unexpected error occurred. (injected by the emulator)",
            );
            return to_http(e.into_response(), dop);
        }
        Fault::Throttle | Fault::Storm => {
            Stats::inc(if plan.fault == Fault::Throttle {
                &shared.stats.fault_throttle
            } else {
                &shared.stats.fault_storm_429
            });
            let c = shared.limits.config();
            let e = ApiError::new(
                429,
                "0x80072322",
                format!(
                    "Number of requests exceeded the limit of {} over time window of {} seconds.",
                    c.max_requests, c.window_secs
                ),
            )
            .with_header("Retry-After", retry_after.to_string());
            return to_http(e.into_response(), dop);
        }
        Fault::ResetBefore => {
            Stats::inc(&shared.stats.fault_reset_before);
            return kill(killer).await;
        }
        _ => {}
    }
    if let Fault::Storm = plan.fault {
        Stats::inc(&shared.stats.fault_storms);
    }
    // 3. Service protection limits (a $batch counts as one request).
    let (permit, remaining) = match shared.limits.admit(user.systemuser_id, &shared.stats) {
        Ok(x) => x,
        Err(e) => return to_http(e.into_response(), dop),
    };
    let body = match axum::body::to_bytes(body, shared.limits.config().max_request_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return to_http(
                ApiError::new(413, "0x80040216", "The request body is too large.").into_response(),
                dop,
            );
        }
    };
    // 4. Execute, in the environment as changed so far (`config.changes`).
    let stage = shared.stage();
    if let Some(stage) = stage {
        stage.restrict(&mut user);
    }
    let method = parts.method.as_str().to_string();
    let (resp, ops) = {
        let ctx = Ctx {
            catalog: stage.map_or(&shared.catalog, |s| &s.catalog),
            base: &shared.base_url,
            version: &version,
            user: &user,
            validation: &shared.config.validation,
            org: &shared.config.organization,
        };
        if path == "$batch" || path == "%24batch" {
            Stats::inc(&shared.stats.batches);
            if method != "POST" {
                (ApiError::method_not_allowed(&method).into_response(), 0)
            } else {
                match crate::batch::executor::execute(&shared, &ctx, &headers, &body) {
                    Ok(o) => (
                        OpResponse {
                            status: o.status,
                            headers: vec![
                                ("OData-Version".into(), "4.0".into()),
                                ("Content-Type".into(), o.content_type),
                            ],
                            body: o.body,
                            entity_id: None,
                        },
                        o.operations,
                    ),
                    Err(e) => (e.into_response(), 0),
                }
            }
        } else {
            Stats::inc(&shared.stats.operations);
            let req = OpRequest {
                method,
                path,
                query,
                headers,
                body: body.to_vec(),
            };
            let mut undo = Vec::new();
            let r = {
                let mut store = shared.store();
                webapi::execute(&ctx, &mut store, &req, &mut undo)
            };
            if r.is_error() {
                Stats::inc(&shared.stats.operations_failed);
            }
            let n = usize::from(!req.path.contains("Microsoft.Dynamics.CRM."))
                + serde_json::from_slice::<serde_json::Value>(&req.body)
                    .ok()
                    .and_then(|v| v.get("Targets").and_then(|t| t.as_array()).map(Vec::len))
                    .unwrap_or(0);
            (r, n)
        }
    };
    // Simulated execution cost, really waited (counts toward the execution-time limit).
    let cost = shared.limits.config().op_cost_ms * ops as u64;
    if cost > 0 {
        tokio::time::sleep(Duration::from_millis(cost)).await;
    }
    drop(permit);
    match plan.fault {
        Fault::ResetAfter => {
            Stats::inc(&shared.stats.fault_reset_after);
            return kill(killer).await;
        }
        Fault::Slow(ms) => {
            Stats::inc(&shared.stats.fault_slow);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        _ => {}
    }
    let mut http = to_http(resp, dop);
    let h = http.headers_mut();
    h.insert(
        "x-ms-ratelimit-burst-remaining-xrm-requests",
        HeaderValue::from(remaining.burst),
    );
    h.insert(
        "x-ms-ratelimit-time-remaining-xrm-requests",
        HeaderValue::from(remaining.time_secs),
    );
    http
}

async fn stats(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    axum::Json(shared.stats.snapshot())
}

async fn not_found(req: Request) -> Response<Body> {
    let e = ApiError::new(
        404,
        "0x80060888",
        format!(
            "The emulator does not serve '{} {}'.",
            req.method(),
            req.uri().path()
        ),
    );
    to_http(e.into_response(), 0)
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(crate::entra::token_v2))
        .route("/{tenant}/oauth2/token", post(crate::entra::token_v1))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(crate::entra::openid_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(crate::entra::openid_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(crate::entra::jwks))
        .route("/{tenant}/discovery/keys", get(crate::entra::jwks))
        .route(
            "/common/discovery/instance",
            get(crate::entra::instance_discovery),
        )
        .route("/_emulator/stats", get(stats))
        .route("/api/data/{version}/", any(web_api_root))
        .route("/api/data/{version}", any(web_api_root))
        .route("/api/data/{version}/{*path}", any(web_api))
        .fallback(not_found)
        .with_state(shared)
}

fn tls_acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| {
            StartError::Io(format!(
                "reading TLS certificate '{}': {e}",
                files.cert.display()
            ))
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            StartError::Io(format!(
                "reading TLS certificate '{}': {e}",
                files.cert.display()
            ))
        })?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| StartError::Io(format!("reading TLS key '{}': {e}", files.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Io(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Io(format!("TLS certificate/key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn serve_connection<IO>(io: IO, app: Router, watcher: hyper_util::server::graceful::Watcher)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let switch = KillSwitch(kill.clone());
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(switch.clone());
        let app = app.clone();
        async move { tower::ServiceExt::oneshot(app, req.map(Body::new)).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    let conn = watcher.watch(conn);
    tokio::spawn(async move {
        tokio::select! {
            _ = conn => {}
            // Dropping the connection future closes the socket without a response.
            _ = kill.notified() => {}
        }
    });
}

/// Starts the emulator on 127.0.0.1.
pub async fn start(config: Config, opts: StartOptions) -> Result<RunningEmulator, StartError> {
    crate::catalog::Catalog::build(&config).map_err(StartError::Config)?;
    let listener = TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .map_err(|e| StartError::Io(format!("binding 127.0.0.1:{}: {e}", opts.port)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Io(e.to_string()))?;
    let acceptor = opts.tls.as_ref().map(tls_acceptor).transpose()?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let shared = Arc::new(
        Shared::new(config, format!("{scheme}://127.0.0.1:{}", addr.port()))
            .map_err(StartError::Config)?,
    );
    if let Some(path) = &opts.data_file {
        crate::persist::load(&shared, path).map_err(StartError::Io)?;
    }
    let app = router(shared.clone());
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let persist_shared = shared.clone();
    let data_file = opts.data_file.clone();
    let task = tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut persist_tick = tokio::time::interval(Duration::from_secs(1));
        let mut saved_changes = persist_shared.store().change_count();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    match &acceptor {
                        Some(acc) => {
                            let acc = acc.clone();
                            let app = app.clone();
                            // The TLS handshake runs in its own task so that a slow client cannot stall accepts.
                            // The connection is watched by the server's graceful shutdown (a
                            // per-connection one, dropped at once, closed every connection unanswered).
                            let watcher = graceful.watcher();
                            tokio::spawn(async move {
                                if let Ok(tls) = acc.accept(stream).await {
                                    serve_connection(tls, app, watcher).await;
                                }
                            });
                        }
                        None => serve_connection(stream, app.clone(), graceful.watcher()).await,
                    }
                }
                _ = persist_tick.tick() => {
                    if let Some(path) = &data_file {
                        let changes = persist_shared.store().change_count();
                        if changes != saved_changes {
                            if let Err(e) = crate::persist::save(&persist_shared, path) {
                                tracing::error!(error = %e, "saving data file");
                            }
                            saved_changes = changes;
                        }
                    }
                }
                _ = stop_rx.changed() => break,
            }
        }
        drop(listener);
        let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
        if let Some(path) = &data_file
            && let Err(e) = crate::persist::save(&persist_shared, path)
        {
            tracing::error!(error = %e, "saving data file");
        }
    });
    Ok(RunningEmulator {
        addr,
        state: StateView {
            shared: shared.clone(),
        },
        shared,
        stop: stop_tx,
        task: Some(task),
    })
}
