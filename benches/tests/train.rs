//! `provdb-bench train` on the real SmolLM2 with short sequences and no anchor, so the bench
//! code cannot rot: it trains, times and reports the JSON keys the benchmark doc reads (the
//! PyTorch side and the ratio are null without the anchor: no network in a test).

use crate::common::{bench, json, ok};

fn bench_train(args: &[&str]) -> std::process::Output {
    bench()
        .args(["train", "--no-anchor"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bench_train_times_provdb_and_reports_the_documented_keys() {
    let report = json(&ok(bench_train(&[
        "--steps", "2", "--warmup", "1", "--length", "32", "--json",
    ])));
    assert_eq!(report["rank"], 8);
    assert_eq!(report["sequence_length"], 32);
    assert_eq!(
        report["targets"],
        serde_json::json!(["q_proj", "k_proj", "v_proj", "o_proj"])
    );
    assert_eq!(report["provdb_step_seconds"].as_array().unwrap().len(), 2);
    assert!(report["provdb_tokens_per_second"].as_f64().unwrap() > 0.0);
    let loss = report["provdb_first_loss"].as_f64().unwrap();
    assert!(loss.is_finite() && loss > 0.0, "{loss}");
    assert!(report["pytorch_tokens_per_second"].is_null());
    assert!(report["ratio_vs_pytorch"].is_null());
    assert_eq!(report["load_average"].as_array().unwrap().len(), 3);
}

#[test]
fn bench_train_refuses_zero_steps_as_a_user_error() {
    let output = bench_train(&["--steps", "0"]);
    assert_eq!(output.status.code(), Some(1));
}
