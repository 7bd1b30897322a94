//! The HTTP API target: request bodies through the real axum router of `provdb serve`, in
//! process (`tower::ServiceExt::oneshot`), over a database in a temporary directory with no
//! models.
//!
//! The first byte picks the route (low four bits) and the key (next two bits: admin,
//! contributor, reader, none); the rest is the body. Invariant: no panic, and no 5xx, except a
//! 503 from the routes that need a model (none is loaded: chat, embeddings, fine-tuning,
//! adapters); every error answers with the API's JSON error body.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use provdb::{Address, Datanet, Db, IngestOptions, KeyRole};
use provdb_server::{ServeLimits, api_router};
use tower::ServiceExt;

/// The Datanet the routes with a name act on.
const OPEN: &str = "open";

/// A route: method, path, and whether it needs a model (and may then answer 503).
struct Route {
    method: Method,
    path: String,
    needs_model: bool,
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: Router,
    /// Bearer tokens: admin, contributor, reader.
    tokens: [String; 3],
    routes: Vec<Route>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("provdb-fuzz-api-")
            .tempdir()
            .expect("temporary directory")
            .keep();
        let db = Db::init(dir.join("data")).expect("database");
        db.create_datanet(Datanet::new(OPEN)).expect("datanet");
        let rows = dir.join("rows.jsonl");
        std::fs::write(&rows, r#"{"text":"a record to curate","title":"one"}"#).expect("rows");
        let options = IngestOptions {
            contributor: Some(Address([0x33; 20])),
            ..IngestOptions::default()
        };
        db.ingest_file(OPEN, &rows, &options).expect("ingest");
        let record = db.records(OPEN, 1).expect("records").remove(0).record_id;
        let token = |role, byte| {
            db.create_api_key(Address([byte; 20]), role, "fuzz")
                .expect("api key")
                .1
        };
        let tokens = [
            token(KeyRole::Admin, 0x01),
            token(KeyRole::Contributor, 0x02),
            token(KeyRole::Reader, 0x03),
        ];
        let limits = ServeLimits {
            rate_per_second: 1_000_000,
            rate_burst: 1_000_000,
            request_timeout: Duration::from_secs(8),
            ..ServeLimits::default()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let route = |method: Method, path: &str, needs_model| Route {
            method,
            path: path
                .replace("{name}", OPEN)
                .replace("{record}", &record.to_string()),
            needs_model,
        };
        let routes = vec![
            route(Method::POST, "/v1/datanets", false),
            route(Method::POST, "/v1/keys", false),
            route(Method::POST, "/v1/datanets/{name}/access-requests", false),
            route(Method::POST, "/v1/datanets/{name}/grants", false),
            route(Method::POST, "/v1/datanets/{name}/curators", false),
            route(Method::POST, "/v1/search", false),
            route(Method::POST, "/v1/sql", false),
            route(Method::PATCH, "/v1/records/{record}", false),
            route(Method::POST, "/v1/epochs", false),
            route(
                Method::POST,
                "/v1/datanets/{name}/records?format=jsonl",
                false,
            ),
            route(
                Method::POST,
                "/v1/datanets/{name}/records?format=csv",
                false,
            ),
            route(Method::POST, "/v1/chat/completions", true),
            route(Method::POST, "/v1/embeddings", true),
            route(Method::POST, "/v1/fine_tuning/jobs", true),
            route(
                Method::POST,
                &format!("/v1/adapters/{}/load", "ab".repeat(32)),
                true,
            ),
            route(Method::POST, "/v1/fine_tuning/jobs/ftjob-1/cancel", true),
        ];
        Fixture {
            runtime,
            router: api_router(db, limits),
            tokens,
            routes,
        }
    })
}

/// One request: see the module documentation for the layout of `data`.
pub fn api_bodies(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let route = &fixture.routes[usize::from(selector & 0x0f) % fixture.routes.len()];
    let mut request = Request::builder()
        .method(route.method.clone())
        .uri(&route.path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = fixture.tokens.get(usize::from((selector >> 4) & 3)) {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Body::from(body.to_vec()))
        .expect("a valid request");
    let (status, text) = fixture.runtime.block_on(async {
        let response = fixture
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .expect("a readable response body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    });
    let allowed_503 = route.needs_model && status.as_u16() == 503;
    assert!(
        !status.is_server_error() || allowed_503,
        "{} {} answered {status}: {text}",
        route.method,
        route.path
    );
    if status.is_client_error() || status.is_server_error() {
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status} without a JSON body ({e}): {text}"));
        assert!(json["error"]["message"].is_string(), "{status}: {text}");
    }
}
