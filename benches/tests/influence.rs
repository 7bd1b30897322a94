//! `provdb-bench influence` on the real SmolLM2, one epoch and two halves, so the bench code
//! cannot rot: it trains with and without recording gradients (checking they train the same),
//! scores the held-out questions, retrains the halves and reports the keys the benchmark doc
//! reads.

use crate::common::{bench, json, ok};

#[test]
fn bench_influence_reports_lds_and_costs_under_the_documented_keys() {
    let report = json(&ok(bench()
        .args([
            "influence",
            "--subsets",
            "2",
            "--epochs",
            "1",
            "--answers",
            "1",
            "--json",
        ])
        .output()
        .unwrap()));
    assert_eq!(
        (report["records"].as_u64(), report["subsets"].as_u64()),
        (Some(48), Some(2))
    );
    for key in ["lds_influence", "lds_tokens", "lds_influence_paid"] {
        let lds = report[key].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&lds), "{key} {lds}");
    }
    assert!(report["training_slowdown"].as_f64().unwrap() > 0.5);
    assert!(report["answer_cost_ratio"].as_f64().unwrap() > 0.0);
    assert_eq!(report["gradient_dim"], 2 * 8 * 8 * 2 * 30);
    assert!(report["store_bytes_per_record"].as_f64().unwrap() > 4.0 * 7_680.0);
    assert_eq!(
        report["lds_influence_per_question"]
            .as_array()
            .unwrap()
            .len(),
        16
    );
}

#[test]
fn bench_influence_refuses_one_subset_as_a_user_error() {
    let output = bench()
        .args(["influence", "--subsets", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}
