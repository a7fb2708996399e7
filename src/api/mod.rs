//! The client API: routes, handlers and the JSON of the original mostdb, byte for byte where
//! the original is right (`POST {ctx}/set|get|del`), plus `GET {ctx}/get?key=…`, `/healthz`
//! `/readyz`, `/cluster` and `/metrics`. Every handler does the same three steps: parse the request, apply it
//! through the coordinator, encode the answer. [`ApiError`] is the only error clients see.
//!
//! Must not import `storage`: data is reached only through `replication`.

pub mod admin;
mod audit;
mod backup;
mod batch;
pub mod cas;
pub mod cluster;
pub mod dashboard;
pub mod error;
pub mod json;
mod list;
pub mod query;
pub mod redis;
mod watch;

pub use error::ApiError;

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::{Live, Settings, View};
use crate::http::{Body, Handler, Method, Request, Response, Upgrade};
use crate::limits::{KEY_BYTES_MAX, TTL_MS_MAX};
use crate::metrics::{self, CoreMetrics, Outcome, Scraper};
use crate::replication::peer::handshake::{self, Nonce};
use crate::replication::peer::{
    AwaitedProof, Identity, PeerAdmission, Refusal, RefusalCode, PEER_PATH, PEER_PROTOCOL,
};
use crate::replication::{clock, OpError, Replication};

use cluster::ClusterView;
use json::{Field, Flag, Millis};

const ALLOW_POST: &str = "POST, OPTIONS";
const ALLOW_GET_POST: &str = "GET, POST, OPTIONS";
const ALLOW_GET: &str = "GET, OPTIONS";
const ALLOW_PROBE: &str = "GET, HEAD, OPTIONS";

const BODY_ALIVE: &[u8] = br#"{"code":200,"success":true,"result":{"status":"alive"}}"#;
const BODY_READY: &[u8] = br#"{"code":200,"success":true,"result":{"status":"ready"}}"#;

/// What the API needs from the settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The route prefix, e.g. `/mostdb`; empty for the root.
    pub context_path: String,
    /// `(header name, value)` when the API key is enabled.
    pub api_key: Option<(String, Vec<u8>)>,
    pub max_value_bytes: usize,
    /// `MOSTDB_TIMEOUT_MS` at start (the runtime settings' value is used when they exist).
    pub timeout_ms: u64,
    /// Mutual TLS between nodes (`MOSTDB_TLS_CA`): the peer upgrade is admitted only on a
    /// connection whose client certificate verified against the CA.
    pub peer_certificate_required: bool,
    /// The peers' URLs, for `PUT /admin/config?scope=cluster`.
    pub peer_urls: Vec<String>,
    /// How peers are called over TLS (`None`: plain HTTP), for the same.
    pub peer_tls: Option<crate::tls::TlsDialer>,
    /// The node's audit log (a no-op when off).
    pub audit: Arc<crate::audit::AuditLog>,
}

/// One core's request handler.
pub struct Api {
    replication: Rc<Replication>,
    /// This node's identity, for peers' link handshakes.
    identity: Rc<Identity>,
    /// Who may dial a peer link (shared by every core).
    admission: Arc<PeerAdmission>,
    cluster: Rc<ClusterView>,
    config: Arc<ApiConfig>,
    /// True once every core serves, false again when the node stops.
    ready: Arc<AtomicBool>,
    /// The runtime settings (API key, value limit), this core's copy; `None`: `config` only.
    settings: Option<Rc<View>>,
    /// This core's request counters, and how `/metrics` reads the whole node's.
    metrics: Rc<CoreMetrics>,
    scraper: Option<Rc<Scraper>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Set,
    Get,
    Del,
    /// The original's `GET {ctx}/get1`: a get whose JSON is in a GET's body.
    Get1,
    /// This node's own copy, no quorum (the original's peer endpoint, now for operators).
    LocalGet,
    /// The original's `api/set|del`, which bypassed the quorum: refused.
    LocalWrite,
    /// Compare-and-set (DESIGN §10).
    Cas,
    Batch,
    List,
    Watch,
    Export,
    Import,
    Healthz,
    Readyz,
    Cluster,
    AdminConfig,
    Metrics,
}

impl Route {
    /// The `route` label of `mostdb_requests_total`; `None` (a path no route serves): other.
    fn label(route: Option<Route>) -> metrics::Route {
        match route {
            Some(Route::Set) => metrics::Route::Set,
            Some(Route::Get) => metrics::Route::Get,
            Some(Route::Del) => metrics::Route::Del,
            Some(Route::Get1) => metrics::Route::Get1,
            Some(Route::LocalGet) => metrics::Route::ApiGet,
            Some(Route::LocalWrite) => metrics::Route::ApiWrite,
            Some(Route::Cas) => metrics::Route::Cas,
            Some(Route::Batch) => metrics::Route::Batch,
            Some(Route::List) => metrics::Route::List,
            Some(Route::Watch) => metrics::Route::Watch,
            Some(Route::Export | Route::Import) => metrics::Route::Backup,
            Some(Route::Healthz) => metrics::Route::Healthz,
            Some(Route::Readyz) => metrics::Route::Readyz,
            Some(Route::Cluster) => metrics::Route::Cluster,
            Some(Route::Metrics) => metrics::Route::Metrics,
            Some(Route::AdminConfig) => metrics::Route::AdminConfig,
            None => metrics::Route::Other,
        }
    }
}

/// One client connection's view of the API: where it comes from (peer links are admitted
/// by address when there is no cluster secret) and, once a peer handshake was answered `101`,
/// the proof the dialler still owes, which the server's listener service hands to `serve_peer`.
pub struct Connection {
    api: Rc<Api>,
    from: IpAddr,
    awaited: Cell<Option<AwaitedProof>>,
}

impl Connection {
    /// The proof awaited on this connection, if a peer handshake switched it.
    pub fn take_awaited(&self) -> Option<AwaitedProof> {
        self.awaited.take()
    }
}

impl Handler for Connection {
    fn call<'a>(&'a self, req: Request<'a>) -> impl std::future::Future<Output = Response> + 'a {
        self.api.serve(req, self)
    }
}

impl Api {
    pub fn new(
        replication: Rc<Replication>,
        config: Arc<ApiConfig>,
        ready: Arc<AtomicBool>,
        identity: Rc<Identity>,
        admission: Arc<PeerAdmission>,
        cluster: Rc<ClusterView>,
    ) -> Api {
        Api {
            replication,
            identity,
            admission,
            cluster,
            config,
            ready,
            settings: None,
            metrics: Rc::default(),
            scraper: None,
        }
    }

    /// Reads the API key and the value limit from the runtime settings (`PUT /admin/config`)
    /// rather than from the config fixed at start, and serves the admin routes.
    pub fn with_settings(mut self, settings: Rc<View>) -> Api {
        self.settings = Some(settings);
        self
    }

    fn live(&self) -> Option<Arc<Live>> {
        self.settings.as_ref().map(|view| view.live().clone())
    }

    fn settings_now(&self) -> Option<Rc<Settings>> {
        self.settings.as_ref().map(|view| view.get())
    }

    /// Counts this core's requests in `core` and answers `/metrics` with `scraper`.
    pub fn with_metrics(mut self, core: Rc<CoreMetrics>, scraper: Rc<Scraper>) -> Api {
        self.metrics = core;
        self.scraper = Some(scraper);
        self
    }

    /// The handler of a connection accepted from `from`.
    pub fn connection(self: &Rc<Self>, from: SocketAddr) -> Connection {
        Connection {
            api: self.clone(),
            from: from.ip(),
            awaited: Cell::new(None),
        }
    }

    async fn serve(&self, req: Request<'_>, conn: &Connection) -> Response {
        // Peers prove the cluster secret (or come from a member's address), never the API key.
        if req.path == PEER_PATH {
            return self.peer_handshake(&req, conn).await;
        }
        // The dashboard page holds no data: it loads without the key, which its requests carry.
        if req.path == dashboard::PATH {
            return match req.method {
                Method::Get | Method::Head => dashboard::page(),
                Method::Options => options(ALLOW_PROBE),
                _ => method_not_allowed(ALLOW_PROBE),
            };
        }
        let started = self.metrics.start();
        let routed = self.route(req.path);
        let answer = self.answer(&req, routed, conn).await;
        // The one place where every client request's outcome is counted.
        let route = Route::label(routed.map(|(route, _)| route));
        self.metrics.record(route, outcome(&answer), started);
        answer.unwrap_or_else(|err| err.to_response())
    }

    /// A client request's answer: the API key first (on every route), then its route.
    async fn answer(
        &self,
        req: &Request<'_>,
        routed: Option<(Route, &'static str)>,
        conn: &Connection,
    ) -> Result<Response, ApiError> {
        if !self.authorized(req) {
            self.audit_refused(req, conn).await;
            return Err(ApiError::Unauthorized);
        }
        let Some((route, allow)) = routed else {
            return Ok(Response::text(404, "Not Found"));
        };
        match (req.method, route) {
            (Method::Options, _) => Ok(options(allow)),
            (Method::Post, Route::Set) => self.set(req.body, conn).await,
            (Method::Post, Route::Del) => self.del(req.body, conn).await,
            (Method::Post, Route::Cas) => self.cas(req.body, conn).await,
            (Method::Post, Route::Batch) => self.batch(req.body, conn).await,
            (Method::Get, Route::List) => self.list(req.query).await,
            (Method::Get, Route::Watch) => self.watch(req.query).await,
            (Method::Post, Route::Get) | (Method::Get, Route::Get1) => {
                self.get(req.body, false).await
            }
            (Method::Get, Route::Get) => self.get_by_query(req.query).await,
            (Method::Post, Route::LocalGet) => self.get(req.body, true).await,
            (Method::Post, Route::LocalWrite) => Err(ApiError::Forbidden {
                detail: "api/set and api/del bypassed the quorum in the original; use set and del",
            }),
            (Method::Get | Method::Head, Route::Healthz) => {
                Ok(Response::json_static(200, BODY_ALIVE))
            }
            (Method::Get | Method::Head, Route::Readyz) => self.readiness(),
            (_, Route::AdminConfig) => Ok(self.admin_config(req, conn.from).await),
            (_, Route::Export) => Ok(self.export(req, conn).await),
            (_, Route::Import) => Ok(self.import(req, conn).await),
            (Method::Get | Method::Head, Route::Cluster) => self.cluster_view(req.query).await,
            (Method::Get | Method::Head, Route::Metrics) => self.metrics_text().await,
            _ => Ok(method_not_allowed(allow)),
        }
    }

    /// `GET /metrics`: the whole node's, in the Prometheus text format.
    async fn metrics_text(&self) -> Result<Response, ApiError> {
        let Some(scraper) = &self.scraper else {
            return Ok(Response::text(404, "Not Found"));
        };
        let text = scraper.render().await.map_err(|_| ApiError::Internal)?;
        Ok(Response {
            status: 200,
            content_type: Some(metrics::encode::CONTENT_TYPE),
            allow: None,
            headers: "",
            body: Body::Owned(text.into_bytes()),
            upgrade: None,
        })
    }

    fn route(&self, path: &str) -> Option<(Route, &'static str)> {
        match path {
            "/healthz" => return Some((Route::Healthz, ALLOW_PROBE)),
            "/readyz" => return Some((Route::Readyz, ALLOW_PROBE)),
            "/cluster" => return Some((Route::Cluster, ALLOW_PROBE)),
            admin::ADMIN_CONFIG_PATH => return Some((Route::AdminConfig, admin::ALLOW_ADMIN)),
            backup::EXPORT_PATH => return Some((Route::Export, ALLOW_GET)),
            backup::IMPORT_PATH => return Some((Route::Import, ALLOW_POST)),
            "/metrics" => return Some((Route::Metrics, ALLOW_PROBE)),
            _ => {}
        }
        let rest = path.strip_prefix(self.config.context_path.as_str())?;
        Some(match rest {
            "/set" => (Route::Set, ALLOW_POST),
            "/get" => (Route::Get, ALLOW_GET_POST),
            "/del" => (Route::Del, ALLOW_POST),
            "/cas" => (Route::Cas, ALLOW_POST),
            "/batch" => (Route::Batch, ALLOW_POST),
            "/list" => (Route::List, ALLOW_GET),
            "/watch" => (Route::Watch, ALLOW_GET),
            "/get1" => (Route::Get1, ALLOW_GET),
            "/api/get" => (Route::LocalGet, ALLOW_POST),
            "/api/set" | "/api/del" => (Route::LocalWrite, ALLOW_POST),
            _ => return None,
        })
    }

    /// The API key, when enabled, on every route; compared in constant time.
    fn authorized(&self, req: &Request<'_>) -> bool {
        if let Some(now) = self.settings_now() {
            return !now.api_key_enable
                || req
                    .header(&now.api_key_name)
                    .is_some_and(|got| constant_time_eq(got, now.api_key_value.as_bytes()));
        }
        match &self.config.api_key {
            None => true,
            Some((name, expected)) => req
                .header(name)
                .is_some_and(|got| constant_time_eq(got, expected)),
        }
    }

    /// A peer's request to open a link: `101` with this node's challenge (the dialler's proof
    /// is then awaited on the connection), or the refusal.
    async fn peer_handshake(&self, req: &Request<'_>, conn: &Connection) -> Response {
        if req.method != Method::Get {
            return method_not_allowed(ALLOW_GET);
        }
        // Mutual TLS: the connection itself must carry a certificate signed by the CA.
        if self.config.peer_certificate_required && !req.client_certified {
            return refused(Refusal {
                status: 403,
                code: RefusalCode::Other,
                reason: "mutual TLS: the link needs a client certificate signed by \
                         MOSTDB_TLS_CA"
                    .to_string(),
            });
        }
        if let Err(refusal) = self.admission.admit(conn.from).await {
            return refused(refusal);
        }
        match handshake::check_request(&self.identity, req.headers, &Nonce::random()) {
            Ok(accepted) => {
                conn.awaited.set(Some(accepted.awaited));
                Response::switching(Upgrade {
                    protocol: PEER_PROTOCOL,
                    headers: accepted.lines,
                })
            }
            Err(refusal) => refused(refusal),
        }
    }

    fn readiness(&self) -> Result<Response, ApiError> {
        if !self.ready.load(Ordering::Relaxed) {
            return Err(ApiError::NotReady);
        }
        // Refused by a load balancer, a client goes to a node that can serve it: this one
        // would only answer NotMost.
        if !self.cluster.health.has_majority() {
            return Err(ApiError::Degraded {
                message: "NoMajority",
                detail: "this node reaches fewer than a majority of the members: every \
                         operation would be refused (NotMost) until it reaches them again",
            });
        }
        if self.replication.space_low() {
            return Err(ApiError::Degraded {
                message: "NoSpace",
                detail: "free disk space is below MOSTDB_DISK_RESERVE_BYTES: writes are refused, \
                         reads are served",
            });
        }
        Ok(Response::json_static(200, BODY_READY))
    }

    /// `GET /cluster`, and with `?view=cluster` every node's view of every other.
    async fn cluster_view(&self, query: Option<&str>) -> Result<Response, ApiError> {
        let whole_cluster = match query::param(query.unwrap_or(""), "view").as_deref() {
            None => false,
            Some("cluster") => true,
            // Not a data route: the admin routes' HTTP 400 envelope, not the original's.
            Some(_) => {
                return Ok(admin::envelope_error(
                    400,
                    "BadRequest",
                    "view: the only view is \"cluster\"",
                ))
            }
        };
        let own_hlc = self.replication.clock_reading();
        let body = self.cluster.encode(own_hlc, whole_cluster).await;
        Ok(Response::json(200, body))
    }

    async fn set(&self, body: &[u8], conn: &Connection) -> Result<Response, ApiError> {
        let (key, value, ttl_ms) = self.parse_key_value(body)?;
        let audit = self.audit_start(&key);
        let done = self.replication.set(key, value, ttl_ms).await;
        self.audit_write("set", audit, conn, &done).await;
        done.map_err(op_error)?;
        Ok(Response::json_static(200, json::BODY_OK))
    }

    async fn del(&self, body: &[u8], conn: &Connection) -> Result<Response, ApiError> {
        let key = parse_key(json::decode(body).map_err(decode_error)?.key)?;
        let audit = self.audit_start(&key);
        let done = self.replication.del(key).await;
        self.audit_write("del", audit, conn, &done).await;
        done.map_err(op_error)?;
        Ok(Response::json_static(200, json::BODY_OK))
    }

    async fn get(&self, body: &[u8], local: bool) -> Result<Response, ApiError> {
        let kv = json::decode(body).map_err(decode_error)?;
        let with_version = match kv.with_version {
            Flag::Missing | Flag::Bool(false) => false,
            Flag::Bool(true) => true,
            Flag::NotBool => return Err(bad_param("with_version must be true or false")),
        };
        let key = parse_key(kv.key)?;
        self.read(key, local, with_version).await
    }

    async fn get_by_query(&self, query: Option<&str>) -> Result<Response, ApiError> {
        let query = query.unwrap_or("");
        let key = query::param(query, "key").ok_or(BAD_PARAM)?;
        let key = parse_key(Field::Str(key.into()))?;
        let with_version = match query::param(query, "with_version").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(bad_param("with_version must be true or false")),
        };
        self.read(key, false, with_version).await
    }

    async fn read(
        &self,
        key: Vec<u8>,
        local: bool,
        with_version: bool,
    ) -> Result<Response, ApiError> {
        // The key goes to the owner core and comes back in the answer; keep a copy for it.
        let found = if local {
            self.replication.local_get(key.clone()).await
        } else {
            self.replication.get(key.clone()).await
        };
        match found.map_err(op_error)? {
            // This node's own copy may hold a value whose expiry passed (nothing is written
            // on a local read): it is gone.
            Some(found) if found.expires.is_some_and(|e| e < found.read_at) => {
                Err(ApiError::NotFound)
            }
            Some(found) => {
                let version = with_version.then(|| {
                    let left = found.expires.map(|e| clock::ms_left(e, found.read_at));
                    (cas::version_string(found.version), left)
                });
                let version = version.as_ref().map(|(v, left)| (v.as_str(), *left));
                let body = json::encode_get_ok_with(&key, &found.value, version);
                Ok(Response::json(200, body))
            }
            None => Err(ApiError::NotFound),
        }
    }

    /// `MOSTDB_MAX_VALUE_BYTES` now.
    fn max_value_bytes(&self) -> usize {
        self.settings_now()
            .map_or(self.config.max_value_bytes, |now| now.max_value_bytes)
    }

    /// A set's key, value and time to live.
    fn parse_key_value(&self, body: &[u8]) -> Result<SetBody, ApiError> {
        let kv = json::decode(body).map_err(decode_error)?;
        let key = parse_key(kv.key)?;
        let ttl_ms = parse_ttl(kv.ttl_ms)?;
        let max_value_bytes = self.max_value_bytes();
        let value = match kv.value {
            Field::Str(v) if v.len() <= max_value_bytes => v.into_owned().into_bytes(),
            Field::Str(_) => return Err(bad_param("value is larger than MOSTDB_MAX_VALUE_BYTES")),
            Field::NotString => return Err(bad_param("value must be a string")),
            Field::Missing => return Err(bad_param("value is required")),
        };
        Ok((key, value, ttl_ms))
    }
}

/// A set's key, value and time to live (ms).
type SetBody = (Vec<u8>, Vec<u8>, Option<u64>);

const BAD_PARAM: ApiError = ApiError::BadParam { detail: None };

fn bad_param(detail: &'static str) -> ApiError {
    ApiError::BadParam {
        detail: Some(detail),
    }
}

/// What the original answered (参数有误, no detail) for what it refused; a detail for the bound
/// it did not have.
fn decode_error(err: json::DecodeError) -> ApiError {
    match err {
        json::DecodeError::TooDeep => bad_param(JSON_TOO_DEEP),
        _ => BAD_PARAM,
    }
}

/// The detail of [`json::DecodeError::TooDeep`]; a test checks that it names
/// [`crate::limits::JSON_DEPTH_MAX`].
const JSON_TOO_DEEP: &str = "JSON is nested deeper than 32 levels";

/// A time to live: 1 ms to `TTL_MS_MAX`.
pub(super) fn parse_ttl(ttl: Millis) -> Result<Option<u64>, ApiError> {
    match ttl {
        Millis::Missing => Ok(None),
        Millis::Ms(ms) if (1..=TTL_MS_MAX).contains(&ms) => Ok(Some(ms)),
        Millis::Ms(_) | Millis::Invalid => Err(bad_param(
            "ttl_ms must be a whole number of milliseconds from 1 to 315360000000 (10 years)",
        )),
    }
}

fn parse_key(key: Field<'_>) -> Result<Vec<u8>, ApiError> {
    match key {
        Field::Str(k) if k.is_empty() => Err(BAD_PARAM),
        Field::Str(k) if k.len() > KEY_BYTES_MAX => Err(bad_param("key is longer than 8192 bytes")),
        Field::Str(k) => Ok(k.into_owned().into_bytes()),
        Field::Missing | Field::NotString => Err(BAD_PARAM),
    }
}

/// The `outcome` label of a request's answer.
fn outcome(answer: &Result<Response, ApiError>) -> Outcome {
    match answer {
        // Routes that answer their own errors (the admin routes).
        Ok(response) => match response.status {
            400 | 413 => Outcome::BadRequest,
            401 => Outcome::Unauthorized,
            403 => Outcome::Forbidden,
            404 => Outcome::NoRoute,
            405 => Outcome::BadMethod,
            409 => Outcome::Conflict,
            500.. => Outcome::Internal,
            _ => Outcome::Ok,
        },
        Err(err) => match err {
            ApiError::BadParam { .. } => Outcome::BadRequest,
            ApiError::NotFound => Outcome::NotFound,
            ApiError::NotMost {
                indeterminate: false,
            } => Outcome::NotMost,
            ApiError::NotMost {
                indeterminate: true,
            } => Outcome::Indeterminate,
            ApiError::Unauthorized => Outcome::Unauthorized,
            ApiError::Forbidden { .. } => Outcome::Forbidden,
            ApiError::Busy => Outcome::Busy,
            ApiError::NotReady => Outcome::NotReady,
            ApiError::NoSpace => Outcome::NoSpace,
            ApiError::Degraded { .. } => Outcome::Degraded,
            ApiError::Internal => Outcome::Internal,
            ApiError::CompareFailed { .. } => Outcome::CompareFailed,
            ApiError::IndeterminateAt { .. } => Outcome::Indeterminate,
            ApiError::Unsupported { .. } => Outcome::Unsupported,
        },
    }
}

fn op_error(err: OpError) -> ApiError {
    match err {
        OpError::NotMost { indeterminate } => ApiError::NotMost { indeterminate },
        OpError::Busy => ApiError::Busy,
        OpError::NoSpace => ApiError::NoSpace,
        OpError::Unsupported(detail) => ApiError::Unsupported { detail },
        OpError::Storage(detail) => {
            tracing::error!(%detail, "storage error");
            ApiError::Internal
        }
    }
}

/// A refused peer handshake: logged (rate-limited), answered with its status and code.
fn refused(refusal: Refusal) -> Response {
    refusal.log();
    Response {
        status: refusal.status,
        content_type: Some(crate::http::CONTENT_TYPE_TEXT),
        allow: None,
        headers: "",
        body: Body::Owned(refusal.body()),
        upgrade: None,
    }
}

fn options(allow: &'static str) -> Response {
    Response {
        status: 200,
        content_type: None,
        allow: Some(allow),
        headers: "",
        body: Body::Static(b""),
        upgrade: None,
    }
}

fn method_not_allowed(allow: &'static str) -> Response {
    Response {
        allow: Some(allow),
        headers: "",
        ..Response::text(405, "Method Not Allowed")
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::JSON_DEPTH_MAX;

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn too_deep_bodies_get_a_detail_that_names_the_limit() {
        assert!(JSON_TOO_DEEP.contains(&format!(" {JSON_DEPTH_MAX} ")));
        let deep = format!(r#"{{"key":"k","x":{}}}"#, "[".repeat(20_000));
        let err = json::decode(deep.as_bytes()).map_err(decode_error);
        assert_eq!(err, Err(bad_param(JSON_TOO_DEEP)));
        let err = json::decode(b"{\"key\":").map_err(decode_error);
        assert_eq!(err, Err(BAD_PARAM), "the original's cases stay byte-exact");
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(parse_key(Field::Missing), Err(BAD_PARAM));
        assert_eq!(parse_key(Field::Str("".into())), Err(BAD_PARAM));
        assert_eq!(parse_key(Field::NotString), Err(BAD_PARAM));
        assert_eq!(parse_key(Field::Str("k".into())), Ok(b"k".to_vec()));
        let long = "k".repeat(KEY_BYTES_MAX + 1);
        assert!(matches!(
            parse_key(Field::Str(long.into())),
            Err(ApiError::BadParam { detail: Some(_) })
        ));
    }
}
