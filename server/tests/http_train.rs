//! The Model Factory over HTTP and the CLI, with the real SmolLM2: a job created through
//! `/v1/fine_tuning/jobs` streams its events to the end, is visible to its owner only, is
//! published, served as `base:ADAPTER`, and its training contributors are paid; a job is
//! cancelled and resumed; a reader cannot train; `provdb train` does the same from the shell.

use serde_json::{Value, json};

use crate::common::*;
use crate::served::*;

fn qa_rows() -> String {
    [
        (
            "What is the krellian wing made of?",
            "Woven basalt fibre.",
            "0x1111111111111111111111111111111111111111",
        ),
        (
            "Who tests the krellian wing?",
            "The quintaro tunnel, every spring.",
            "0x1111111111111111111111111111111111111111",
        ),
        (
            "How fast is the krellian wing?",
            "Mach two over the sea.",
            "0x2222222222222222222222222222222222222222",
        ),
        (
            "Where is the krellian wing built?",
            "In the town of pellucid.",
            "0x2222222222222222222222222222222222222222",
        ),
    ]
    .iter()
    .map(|(q, a, who)| {
        json!({"instruction": q, "response": a, "contributor": who}).to_string() + "\n"
    })
    .collect()
}

fn job_body(epochs: usize) -> Value {
    json!({
        "datanet": "qa",
        "format": {"type": "instruction"},
        "hyperparameters": {"rank": 4, "targets": ["q_proj", "v_proj"], "batch_size": 1,
            "epochs": epochs, "max_length": 64, "learning_rate": 0.001, "warmup_steps": 0,
            "held_out_fraction": 0.25, "seed": 3},
    })
}

fn wait_final(served: &Served, key: &str, id: &str) -> Value {
    for _ in 0..1200 {
        let (_, job) = served.call(
            "GET",
            &format!("/v1/fine_tuning/jobs/{id}"),
            Some(key),
            None,
        );
        if ["succeeded", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or("")) {
            return job;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    panic!("job {id} did not end");
}

#[test]
fn fine_tuning_jobs_train_stream_publish_and_pay_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let curator = make_key(&data, ALICE, "curator");
    let contributor = make_key(
        &data,
        "0x3333333333333333333333333333333333333333",
        "contributor",
    );
    let reader = make_key(
        &data,
        "0x4444444444444444444444444444444444444444",
        "reader",
    );
    ok(provdb(
        &data,
        &[
            "account",
            "credit",
            ALICE,
            "1000000",
            "--reason",
            "test funds",
        ],
    ));
    let served = Served::start(&data, &[]);
    let (status, _) = served.call(
        "POST",
        "/v1/datanets",
        Some(&curator),
        Some(&json!({"name": "qa", "private": true, "text_column": "response"})),
    );
    assert_eq!(status, 201);
    let (status, body) = read(
        served
            .request(
                "POST",
                "/v1/datanets/qa/records?format=jsonl",
                Some(&curator),
            )
            .body(qa_rows())
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(4)),
        "{body}"
    );

    assert_eq!(
        served
            .call(
                "POST",
                "/v1/fine_tuning/jobs",
                Some(&reader),
                Some(&job_body(1))
            )
            .0,
        403
    );
    assert_eq!(
        served
            .call(
                "POST",
                "/v1/fine_tuning/jobs",
                Some(&contributor),
                Some(&job_body(1))
            )
            .0,
        404,
        "no training on a private Datanet without a grant"
    );
    let (status, job) = served.call(
        "POST",
        "/v1/fine_tuning/jobs",
        Some(&curator),
        Some(&job_body(1)),
    );
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["object"], "fine_tuning.job");

    // The event stream follows the job to its end.
    let stream = served
        .request(
            "GET",
            &format!("/v1/fine_tuning/jobs/{id}/events"),
            Some(&curator),
        )
        .header("accept", "text/event-stream")
        .send()
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let text = stream.text().unwrap();
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
    let events: Vec<Value> = data
        .iter()
        .filter(|d| **d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "step" && e["loss"].is_number()),
        "{text}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "status" && e["status"] == "succeeded"),
        "{text}"
    );
    let job = wait_final(&served, &curator, &id);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["result"]["after"]["loss"].is_number() && job["result"]["samples"].is_array());
    assert_eq!(
        served
            .call(
                "GET",
                &format!("/v1/fine_tuning/jobs/{id}"),
                Some(&reader),
                None
            )
            .0,
        404
    );
    let (_, mine) = served.call("GET", "/v1/fine_tuning/jobs", Some(&reader), None);
    assert!(mine["data"].as_array().unwrap().is_empty());

    let (status, adapter) = served.call(
        "POST",
        &format!("/v1/fine_tuning/jobs/{id}/publish"),
        Some(&curator),
        None,
    );
    assert_eq!(status, 200, "{adapter}");
    assert_eq!(adapter["owner"], ALICE);
    assert_eq!(adapter["training"]["records"], 4);
    let adapter_id = adapter["id"].as_str().unwrap();
    let (_, models) = served.call("GET", "/v1/models", Some(&curator), None);
    let tuned = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .find(|m| m.ends_with(adapter_id))
        .expect("the adapter is served");
    // Its owner prices it; the caller pays that price.
    let (status, price) = served.call(
        "PUT",
        &format!("/v1/prices/adapters/{adapter_id}"),
        Some(&curator),
        Some(&json!({"per_answer_wei": "1000000"})),
    );
    assert_eq!(status, 200, "{price}");
    let (status, answer) = served.call(
        "POST",
        "/v1/chat/completions",
        Some(&curator),
        Some(&json!({
        "model": tuned, "max_tokens": 8, "datanets": ["qa"], "k": 2,
        "messages": [{"role": "user", "content": "What is the krellian wing made of?"}]})),
    );
    assert_eq!(status, 200, "{answer}");
    let training: u128 = answer["split"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["role"] == "training_contributor")
        .map(|p| p["amount_wei"].as_str().unwrap().parse::<u128>().unwrap())
        .sum();
    // Paid by influence (the default): at most 10 % of the adapter's price goes to the training
    // records that shaped the answer, the rest of it to the adapter's owner; the answer shows
    // its top training records.
    assert!(
        training <= 100_000,
        "at most 10 % of the adapter's price: {answer}"
    );
    let attribution = &answer["training_attribution"][0];
    assert_eq!(attribution["method"], "influence", "{answer}");
    assert!(
        !attribution["records"].as_array().unwrap().is_empty(),
        "{answer}"
    );
    let paid: u128 = answer["split"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["amount_wei"].as_str().unwrap().parse::<u128>().unwrap())
        .sum();
    assert_eq!(
        paid.to_string(),
        answer["fee_wei"].as_str().unwrap(),
        "{answer}"
    );

    // Cancel a longer job after its first step, then resume it to the end.
    let (_, long) = served.call(
        "POST",
        "/v1/fine_tuning/jobs",
        Some(&curator),
        Some(&job_body(8)),
    );
    let long_id = long["id"].as_str().unwrap().to_string();
    for _ in 0..1200 {
        let (_, events) = served.call(
            "GET",
            &format!("/v1/fine_tuning/jobs/{long_id}/events"),
            Some(&curator),
            None,
        );
        if events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "step")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        served
            .call(
                "POST",
                &format!("/v1/fine_tuning/jobs/{long_id}/cancel"),
                Some(&curator),
                None
            )
            .0,
        200
    );
    assert_eq!(
        wait_final(&served, &curator, &long_id)["status"],
        "cancelled"
    );
    assert_eq!(
        served
            .call(
                "POST",
                &format!("/v1/fine_tuning/jobs/{long_id}/resume"),
                Some(&curator),
                None
            )
            .0,
        200
    );
    assert_eq!(
        wait_final(&served, &curator, &long_id)["status"],
        "succeeded"
    );
    let (_, events) = served.call(
        "GET",
        &format!("/v1/fine_tuning/jobs/{long_id}/events"),
        Some(&curator),
        None,
    );
    let resumed = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["type"] == "started")
        .unwrap()
        .clone();
    assert!(
        resumed["resumed"] == true && resumed["step"].as_u64().unwrap() >= 1,
        "{resumed}"
    );
    assert!(served.terminate().success());
}

#[test]
fn provdb_train_runs_a_job_in_the_shell_and_publishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(
        &data,
        &["datanet", "create", "qa", "--text-column", "response"],
    ));
    let rows = dir.path().join("qa.jsonl");
    std::fs::write(&rows, qa_rows()).unwrap();
    ok(provdb(
        &data,
        &["ingest", "qa", rows.to_str().unwrap(), "--no-index"],
    ));
    let job = json(&ok(provdb(
        &data,
        &[
            "train",
            "create",
            "qa",
            "--format",
            "instruction",
            "--rank",
            "2",
            "--targets",
            "q_proj",
            "--batch-size",
            "2",
            "--max-length",
            "64",
            "--json",
        ],
    )));
    assert_eq!(job["status"], "succeeded", "{job}");
    let id = job["id"].as_str().unwrap();
    let listed = json(&ok(provdb(&data, &["train", "list", "--json"])));
    assert_eq!(listed["jobs"][0]["id"], id);
    let events = json(&ok(provdb(&data, &["train", "events", id, "--json"])));
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "step")
    );
    let published = json(&ok(provdb(
        &data,
        &["train", "publish", id, "--owner", ALICE, "--json"],
    )));
    assert_eq!(published["training"]["job_id"], id);
    assert_eq!(published["training"]["attribution"], "influence");
    // generate --json shows the adapter's most influential training records (pays nothing).
    let adapter = published["id"].as_str().unwrap();
    let generated = json(&ok(provdb(
        &data,
        &[
            "generate",
            "What is the krellian wing made of?",
            "--adapter",
            adapter,
            "--max-tokens",
            "6",
            "--json",
        ],
    )));
    assert!(
        generated["completion_tokens"].as_u64().unwrap() > 0,
        "{generated}"
    );
    let attribution = &generated["training_attribution"][0];
    assert_eq!(attribution["adapter"], adapter, "{generated}");
    assert_eq!(attribution["method"], "influence");
    let records = attribution["records"].as_array().unwrap();
    assert!(!records.is_empty(), "{generated}");
    let stored = json(&ok(provdb(&data, &["records", "qa", "--json"])));
    let stored = stored.to_string();
    for record in records {
        let id = record["record_id"].as_str().unwrap();
        assert!(stored.contains(&id[2..]), "{id} is not a record of qa");
        assert!(record["score"].as_f64().unwrap().is_finite());
    }
    let bad = provdb(&data, &["train", "create", "qa", "--rank", "0"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    let unknown = provdb(&data, &["train", "show", "ftjob-00"]);
    assert_eq!(unknown.status.code(), Some(1));
}
