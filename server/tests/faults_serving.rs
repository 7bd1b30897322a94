//! Faults while serving: the model files vanish or are overwritten under a running server,
//! and a client hangs up in the middle of a streamed answer. The server goes on answering,
//! and the ledger keeps every answer whole.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::ledger_check::check_whole_answers;
use crate::served::*;

fn models_dir() -> std::path::PathBuf {
    std::env::var_os("PROVDB_MODELS")
        .map(Into::into)
        .unwrap_or_else(|| std::env::home_dir().unwrap().join(".cache/provdb/models"))
}

/// A server over a fresh database with one Datanet `d` of three records; returns it, a
/// curator's key and the base model's name.
fn serving(data: &Path, extra: &[&str]) -> (Served, String, String) {
    ok(provdb(data, &["init"]));
    let key = make_key(data, ALICE, "curator");
    let served = Served::start(data, extra);
    sample_datanet(&served, &key);
    let model = base_model(&served, &key);
    (served, key, model)
}

fn ask(served: &Served, key: &str, model: &str) -> (u16, Value) {
    served.call(
        "POST",
        "/v1/chat/completions",
        Some(key),
        Some(
            &json!({"model": model, "max_tokens": 8, "datanets": ["d"], "k": 2,
            "messages": [{"role": "user", "content": "Why does the boundary layer separate?"}]}),
        ),
    )
}

#[test]
fn model_files_vanishing_under_a_running_server_change_nothing_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    copy_dir(&models_dir(), &models);
    let gguf = std::fs::read_dir(models.join("smollm2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "gguf"))
        .unwrap();
    let embedder = models.join("all-minilm-l6-v2");
    let data = dir.path().join("db");
    let (served, key, model) = serving(
        &data,
        &[
            "--model",
            gguf.to_str().unwrap(),
            "--embedder",
            embedder.to_str().unwrap(),
        ],
    );
    let (status, first) = ask(&served, &key, &model);
    assert_eq!(status, 200, "{first}");

    // The generator's file overwritten with garbage in place, the embedder's folder deleted.
    std::fs::write(&gguf, vec![0xA5u8; 4096]).unwrap();
    std::fs::remove_dir_all(&embedder).unwrap();
    let (status, second) = ask(&served, &key, &model);
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["choices"][0]["message"]["content"], first["choices"][0]["message"]["content"],
        "the same greedy answer from the weights in memory"
    );
    assert!(second["answer_id"].is_string(), "{second}");
    let (status, body) = served.call(
        "POST",
        "/v1/embeddings",
        Some(&key),
        Some(&json!({"model": "all-minilm-l6-v2", "input": "shock wave"})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(served.terminate().success());
    assert_eq!(check_whole_answers(&data), 2);
}

#[test]
fn a_client_hanging_up_mid_stream_leaves_the_server_serving_and_the_ledger_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let (served, key, model) = serving(&data, &[]);
    for _ in 0..3 {
        let mut response = served
            .request("POST", "/v1/chat/completions", Some(&key))
            .json(
                &json!({"model": model, "max_tokens": 64, "stream": true, "datanets": ["d"],
                "messages": [{"role": "user", "content": "Explain boundary layer separation."}]}),
            )
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut first = [0u8; 64];
        let read = response.read(&mut first).unwrap();
        assert!(read > 0, "the stream started");
        drop(response); // hang up mid-stream
    }
    // The generations end (finished or stopped) and the slots come back.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, metrics) = served.call("GET", "/metrics", None, None);
        if metrics
            .as_str()
            .unwrap()
            .contains("provdb_generations_running 0")
        {
            break;
        }
        assert!(Instant::now() < deadline, "generations never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, answer) = ask(&served, &key, &model);
    assert_eq!(status, 200, "{answer}");
    assert!(served.terminate().success());
    let answers = check_whole_answers(&data);
    assert!((1..=4).contains(&answers), "{answers} answers");
}
