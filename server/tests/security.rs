//! The security review's checks that a test can make: no request reaches a file outside the
//! server's own folders (paths in URLs and bodies), and a private Datanet's content appears in
//! no log line, metric or error message, even when its owner's requests fail.

use serde_json::json;

use crate::common::*;
use crate::served::*;

const MARKER: &str = "zanzibarquokka";

#[test]
fn paths_in_requests_never_reach_files_outside_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let key = make_key(&data, ALICE, "admin");
    let served = Served::start(&data, &[]);
    let probes = [
        ("GET", "/..%2F..%2F..%2Fetc%2Fpasswd"),
        ("GET", "/%2e%2e/%2e%2e/etc/passwd"),
        ("GET", "/app.js%00.png"),
        ("POST", "/v1/adapters/..%2F..%2Fetc/load"),
        ("POST", "/v1/adapters/%2Fetc%2Fpasswd/load"),
        ("GET", "/v1/fine_tuning/jobs/..%2F..%2Fstorage"),
        ("GET", "/v1/datanets/..%2Fstorage"),
        ("GET", "/v1/datanets/d/records/..%2F..%2FCURRENT"),
    ];
    for (method, path) in probes {
        let (status, body) = served.call(method, path, Some(&key), None);
        assert!(
            (400..500).contains(&status),
            "{method} {path}: {status} {body}"
        );
        let text = body.to_string();
        assert!(
            !text.contains("root:"),
            "{method} {path} read a file: {text}"
        );
        assert!(
            !text.contains(data.to_str().unwrap()),
            "{method} {path} shows a path: {text}"
        );
    }
    // A fine-tuning job names a model; only the loaded generator is allowed, never a path.
    let (status, body) = served.call(
        "POST",
        "/v1/fine_tuning/jobs",
        Some(&key),
        Some(&json!({"model": "../../etc/passwd", "datanet": "d"})),
    );
    assert!(
        (400..600).contains(&status) && status != 500,
        "{status} {body}"
    );
}

#[test]
fn a_private_datanets_content_is_in_no_log_metric_or_outsider_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let owner = make_key(&data, ALICE, "curator");
    let outsider = make_key(
        &data,
        "0x2222222222222222222222222222222222222222",
        "reader",
    );
    let log = dir.path().join("serve.log");
    let served = Served::start_logging_to(&data, &[], &log);
    let (status, body) = served.call(
        "POST",
        "/v1/datanets",
        Some(&owner),
        Some(&json!({"name": "vault", "private": true})),
    );
    assert_eq!(status, 201, "{body}");
    let good = json!({"text": format!("The {MARKER} formula predicts transition.")}).to_string();
    let bad = format!("{good}\n{{\"text\": 12, \"note\": \"{MARKER}\"}}\n");
    for (body, expected) in [(good.clone(), 200), (bad, 400), (good, 400)] {
        let (status, answer) = read(
            served
                .request(
                    "POST",
                    "/v1/datanets/vault/records?format=jsonl",
                    Some(&owner),
                )
                .body(body)
                .send()
                .unwrap(),
        );
        assert_eq!(status, expected, "{answer}");
    }
    let model = served.call("GET", "/v1/models", Some(&owner), None).1["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let requests = [
        (
            "/v1/search",
            json!({"datanet": "vault", "query": MARKER, "k": 3}),
        ),
        (
            "/v1/sql",
            json!({"query": format!("SELECT * FROM vault WHERE text LIKE '%{MARKER}%'")}),
        ),
        (
            "/v1/sql",
            json!({"query": "SELECT text FROM chunks WHERE nonsense"}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": model, "max_tokens": 4, "datanets": ["vault"],
            "messages": [{"role": "user", "content": "What does the formula predict?"}]}),
        ),
    ];
    for (path, body) in &requests {
        let (_, answer) = served.call("POST", path, Some(&outsider), Some(body));
        assert!(!answer.to_string().contains(MARKER), "{path}: {answer}");
        served.call("POST", path, Some(&owner), Some(body));
    }
    let (_, metrics) = served.call("GET", "/metrics", None, None);
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        !metrics.contains(MARKER) && !metrics.contains("vault"),
        "{metrics}"
    );
    assert!(served.terminate().success());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains(MARKER),
        "the log holds private content: {logged}"
    );
}
