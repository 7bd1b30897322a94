//! The web UI in a real browser: server/tests/ui/e2e.mjs drives Debian's Chromium (npm
//! playwright-core, both installed by scripts/browser-deps.sh) through every page against
//! `provdb serve` with the real models: sign in, create a private Datanet, upload with
//! progress, curate a record, ask a streamed cited question and open a citation, fine-tune an
//! adapter on the Datanet from the Train page (live loss chart, evaluation, samples), publish it
//! and chat with it, audit the ledger, and check that a reader cannot see the private Datanet.
//! Screenshots are kept in `$CARGO_TARGET_TMPDIR/ui-screenshots/`.

use std::process::Command;

use serde_json::json;

use crate::common::*;
use crate::served::*;

#[test]
fn the_web_ui_works_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let admin = make_key(&data, ALICE, "admin");
    // The admin asks in the browser, paying the price the page sets on its Datanet.
    ok(provdb(
        &data,
        &[
            "account",
            "credit",
            ALICE,
            "100000000000000000",
            "--reason",
            "test funds",
        ],
    ));
    let reader = make_key(
        &data,
        "0x3333333333333333333333333333333333333333",
        "reader",
    );
    let upload = dir.path().join("notes.jsonl");
    let rows: String = [
        "The boundary layer on a flat plate becomes turbulent past a critical Reynolds number.",
        "Shock waves on the upper wing surface cause the boundary layer to separate.",
        "Heat transfer to a blunt cone rises sharply behind the bow shock.",
        "Jet noise falls when the exhaust velocity is lowered.",
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| {
        json!({"text": t, "contributor": format!("0x{:040x}", 0x51 + i)}).to_string() + "\n"
    })
    .collect();
    std::fs::write(&upload, rows).unwrap();
    let node_path = ok(Command::new("bash")
        .arg(repo_root().join("scripts/browser-deps.sh"))
        .arg("--print-node-path")
        .output()
        .unwrap());
    let node_path = stdout(&node_path).trim().to_string();
    let served = Served::start(&data, &[]);
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let run = Command::new("node")
        .arg(repo_root().join("server/tests/ui/e2e.mjs"))
        .env("NODE_PATH", node_path)
        .env("PROVDB_URL", &served.url)
        .env("PROVDB_ADMIN_KEY", &admin)
        .env("PROVDB_READER_KEY", &reader)
        .env("PROVDB_UPLOAD_FILE", &upload)
        .env("SCREENSHOT_DIR", &shots)
        .output()
        .unwrap();
    let printed = stdout(&run);
    assert!(
        run.status.success() && printed.contains("e2e ok"),
        "e2e failed:\n{printed}\n{}",
        stderr(&run)
    );
    let pngs = std::fs::read_dir(&shots)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert!(pngs >= 8, "a screenshot per page step, found {pngs}");
    // What the browser did is in the database: the private Datanet, its records, an answer.
    let (_, datanet) = served.call("GET", "/v1/datanets/e2e_notes", Some(&admin), None);
    assert_eq!(
        (datanet["visibility"].as_str(), datanet["records"].as_u64()),
        (Some("private"), Some(4)),
        "{datanet}"
    );
    // The Train page's job succeeded with the form's hyperparameters and its adapter is served.
    let (_, jobs) = served.call("GET", "/v1/fine_tuning/jobs", Some(&admin), None);
    let job = &jobs["data"][0];
    assert_eq!(
        (
            job["status"].as_str(),
            job["datanet"].as_str(),
            job["hyperparameters"]["rank"].as_u64(),
            job["hyperparameters"]["batch_size"].as_u64(),
        ),
        (Some("succeeded"), Some("e2e_notes"), Some(2), Some(1)),
        "{jobs}"
    );
    let adapter = job["result"]["adapter_id"].as_str().unwrap();
    let (_, models) = served.call("GET", "/v1/models", Some(&admin), None);
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"].as_str().unwrap().ends_with(&format!(":{adapter}"))),
        "the published adapter is a model: {models}"
    );
    let (_, verify) = served.call("GET", "/v1/ledger/verify", Some(&admin), None);
    assert!(
        verify["entries"].as_u64().unwrap() > 0,
        "the answer was recorded: {verify}"
    );
}
