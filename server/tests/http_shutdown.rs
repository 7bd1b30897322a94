//! SIGTERM while a cited answer is being generated: the server stops taking connections but
//! finishes the answer, records it in the ledger, and exits 0; reopened, the ledger verifies
//! and holds that answer.

use serde_json::json;

use crate::common::*;
use crate::served::*;

#[test]
fn sigterm_finishes_the_answer_in_flight_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let key = make_key(&data, ALICE, "curator");
    ok(provdb(
        &data,
        &["account", "credit", ALICE, "777", "--reason", "test funds"],
    ));
    let served = Served::start(&data, &[]);
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
    let (status, _) = read(
        served
            .request("POST", "/v1/datanets/d/records?format=jsonl", Some(&key))
            .body(json!({"text": "The boundary layer separates behind the shock."}).to_string())
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    price_datanet(&served, &key, "d", 777);
    let model = served.call("GET", "/v1/models", Some(&key), None).1["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = served.url.clone();
    let asking_key = key.clone();
    let asking = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::new();
        read(
            client
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(asking_key)
                .json(
                    &json!({"model": model, "max_tokens": 48, "datanets": ["d"], "k": 1,
                    "messages": [{"role": "user", "content": "Why does it separate?"}]}),
                )
                .send()
                .unwrap(),
        )
    });
    // Wait until the answer is generating, then ask the server to stop.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, metrics) = served.call("GET", "/metrics", None, None);
        if metrics
            .as_str()
            .unwrap()
            .contains("provdb_generations_running 1")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the answer never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = served.terminate();
    assert!(status.success(), "exit: {status:?}");
    let (code, answer) = asking.join().unwrap();
    assert_eq!(code, 200, "{answer}");
    let answer_id = answer["answer_id"].as_str().unwrap().to_string();
    let verified = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert!(verified["broken"].is_null(), "{verified}");
    let rows = json(&ok(provdb(
        &data,
        &[
            "sql",
            &format!(
                "SELECT CAST(sum(amount_wei) AS VARCHAR) AS paid FROM attributions WHERE answer_id = '{answer_id}' AND role <> 'charge'"
            ),
            "--format",
            "json",
        ],
    )));
    assert_eq!(rows[0]["paid"], "777", "{rows}");
}
