//! The web UI: the files of `server/ui/` compiled into the binary and served without a key
//! (the page asks for one and sends it with every API call). Only the files listed here are
//! served; any other name is 404.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (name, contents, media type) of every file of the UI.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        include_str!("../../ui/index.html"),
        "text/html; charset=utf-8",
    ),
    (
        "app.js",
        include_str!("../../ui/app.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "api.js",
        include_str!("../../ui/api.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "curate.js",
        include_str!("../../ui/curate.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "ask.js",
        include_str!("../../ui/ask.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "train.js",
        include_str!("../../ui/train.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "train-form.js",
        include_str!("../../ui/train-form.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "audit.js",
        include_str!("../../ui/audit.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "style.css",
        include_str!("../../ui/style.css"),
        "text/css; charset=utf-8",
    ),
];

fn asset(name: &str) -> Response {
    let Some((_, body, content_type)) = FILES.iter().find(|(file, _, _)| *file == name) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
        ),
    );
    response
}

/// `GET /`.
pub(crate) async fn index() -> Response {
    asset("index.html")
}

/// `GET /{file}`: one of the UI's files.
pub(crate) async fn file(Path(name): Path<String>) -> Response {
    asset(&name)
}
