//! The server's limits, each met on purpose: an oversized body (413, nothing stored), a key over
//! its rate (429 with Retry-After, other keys unaffected), a full generation gate (429 with
//! Retry-After), a request over its time (503), and SQL answered as an Arrow IPC stream.

use std::io::Cursor;

use provdb::query::arrow::ipc::reader::StreamReader;
use serde_json::json;

use crate::common::*;
use crate::served::*;

fn jsonl(rows: usize, text_bytes: usize) -> String {
    (0..rows)
        .map(|i| json!({"text": format!("{i} {}", "x".repeat(text_bytes))}).to_string() + "\n")
        .collect()
}

#[test]
fn oversized_bodies_rates_and_a_full_gate_get_clear_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let key = make_key(&data, ALICE, "curator");
    let other = make_key(
        &data,
        "0x3333333333333333333333333333333333333333",
        "reader",
    );
    let served = Served::start(
        &data,
        &[
            "--max-upload-mb",
            "1",
            "--rate",
            "5",
            "--burst",
            "20",
            "--generation-slots",
            "1",
            "--generation-queue",
            "0",
            "--timeout-s",
            "2",
        ],
    );
    assert_eq!(
        served
            .call(
                "POST",
                "/v1/datanets",
                Some(&key),
                Some(&json!({"name": "d"}))
            )
            .0,
        201
    );

    // An upload over 1 MiB is refused whole; one under it is stored.
    let (status, body) = read(
        served
            .request("POST", "/v1/datanets/d/records?format=jsonl", Some(&key))
            // The server answers before it has read the body; this connection is done then.
            .header("connection", "close")
            .body(jsonl(3000, 400))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        served.call("GET", "/v1/datanets/d", Some(&key), None).1["records"],
        0
    );
    let (status, body) = read(
        served
            .request("POST", "/v1/datanets/d/records?format=jsonl", Some(&key))
            .body(jsonl(50, 40))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(50)),
        "{body}"
    );
    // CSV takes the same route; a bad row fails the file, with its row named.
    let (status, body) = read(
        served
            .request(
                "POST",
                "/v1/datanets/d/records?format=csv&filename=more.csv",
                Some(&key),
            )
            .body("text,quality\nfirst csv row,0.5\nsecond csv row,0.7\n")
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(2)),
        "{body}"
    );
    let (status, body) = read(
        served
            .request(
                "POST",
                "/v1/datanets/d/records?format=csv&filename=bad.csv",
                Some(&key),
            )
            .body("text,quality\nfine row,0.5\nbad row,7\n")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("bad.csv: row 2") && message.contains("quality"),
        "{message}"
    );
    assert!(
        !message.contains("upload-"),
        "no server path in the message: {message}"
    );
    // A JSON body over the 1 MiB default of other routes.
    let huge = json!({"query": "x".repeat(2 << 20)});
    let refused = served
        .request("POST", "/v1/sql", Some(&key))
        .header("connection", "close")
        .json(&huge)
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 413);

    // Malformed or misspelt bodies and queries get the JSON error body too.
    for (body, expected) in [
        ("{not json", 400),
        (r#"{"query": "SELECT 1", "limit": 5}"#, 422),
    ] {
        let (status, error) = read(
            served
                .request("POST", "/v1/sql", Some(&key))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .unwrap(),
        );
        assert_eq!(status, expected, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
    let (status, error) = served.call("GET", "/v1/datanets/d/records?limit=many", Some(&key), None);
    assert_eq!(status, 400, "{error}");
    assert!(error["error"]["message"].is_string(), "{error}");

    // SQL as an Arrow IPC stream.
    let response = served
        .request("POST", "/v1/sql", Some(&key))
        .header("accept", "application/vnd.apache.arrow.stream")
        .json(&json!({"query": "SELECT record_id, contributor FROM records ORDER BY record_id"}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apache.arrow.stream"
    );
    let bytes = response.bytes().unwrap();
    let reader = StreamReader::try_new(Cursor::new(bytes.to_vec()), None).unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 52);

    // A full generation gate: one slot, no queue; concurrent chats beyond it get 429.
    let model = served.call("GET", "/v1/models", Some(&key), None).1["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let chats: Vec<_> = (0..3).map(|i| {
        let request = served.request("POST", "/v1/chat/completions", Some(if i == 0 { &key } else { &other }))
            .json(&json!({"model": model, "max_tokens": 24, "messages": [{"role": "user", "content": "Tell me about wings."}]}));
        std::thread::spawn(move || {
            let response = request.send().unwrap();
            let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (response.status().as_u16(), retry)
        })
    }).collect();
    let results: Vec<(u16, Option<String>)> =
        chats.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.iter().any(|r| r.0 == 200), "{results:?}");
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert!(!refused.is_empty(), "{results:?}");
    assert!(
        refused.iter().all(|r| r
            .1
            .as_deref()
            .is_some_and(|s| s.parse::<u64>().unwrap() >= 1)),
        "{results:?}"
    );

    // A request over its time: a long non-streamed chat against a 2 s timeout.
    let (status, body) = served.call(
        "POST",
        "/v1/chat/completions",
        Some(&key),
        Some(
            &json!({"model": model, "max_tokens": 1024, "temperature": 0.8, "seed": 3,
            "messages": [{"role": "user", "content": "Write a long story about a wind tunnel."}]}),
        ),
    );
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--timeout-s"),
        "{body}"
    );

    // A key over its rate (5/s, burst 20) is refused with Retry-After; another key is not.
    let mut limited = None;
    for _ in 0..60 {
        let response = served.request("GET", "/v1/me", Some(&key)).send().unwrap();
        if response.status().as_u16() == 429 {
            limited = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            break;
        }
    }
    assert!(
        limited.is_some_and(|s| s.parse::<u64>().unwrap() >= 1),
        "no 429 with Retry-After within 60 quick requests"
    );
    assert_eq!(served.call("GET", "/v1/me", Some(&other), None).0, 200);
}
