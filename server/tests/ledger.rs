//! `provdb price`, `account`, `ask`, `ledger verify|policy`, `audit` and `epoch
//! close|list|proof` from the command line, with the real models: prices set by their owners,
//! a caller charged exactly the fee, a split that sums to it, a refund owed in the next epoch,
//! and a tampered entry named by `ledger verify`.

use crate::common::*;

const CURATOR: &str = "0xc0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";
const OWNER: &str = "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const PROTOCOL: &str = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ASKER: &str = "0xa5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";

#[test]
fn an_answer_is_paid_recorded_verified_and_closed_into_an_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(
        &data,
        &["datanet", "create", "aero", "--owner", CURATOR],
    ));
    let input = dir.path().join("aero.jsonl");
    let lines: Vec<String> = [
        "the zorblat coefficient of the krellian wing is 7.3",
        "oblique shock waves form when a supersonic flow is turned by a wedge",
    ]
    .iter()
    .map(|t| format!("{{\"text\":\"{t}\",\"contributor\":\"{ALICE}\"}}"))
    .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    ok(provdb(&data, &["ingest", "aero", input.to_str().unwrap()]));
    let policy = json(&ok(provdb(
        &data,
        &[
            "ledger",
            "policy",
            "--model-owner",
            OWNER,
            "--protocol",
            PROTOCOL,
            "--protocol-bps",
            "500",
            "--json",
        ],
    )));
    assert_eq!(policy["protocol_bps"], 500);
    let bad = provdb(&data, &["ledger", "policy", "--protocol-bps", "10001"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));

    // Prices: the model's by the operator, the Datanet's by its owner; the asker is credited.
    let model =
        provdb::models::generator_name(&provdb::inference::model_files::default_generator_path());
    ok(provdb(
        &data,
        &["price", "set", "--model", &model, "--per-answer", "100000"],
    ));
    ok(provdb(
        &data,
        &[
            "price",
            "set",
            "--datanet",
            "aero",
            "--per-answer",
            "900000",
            "--as",
            CURATOR,
        ],
    ));
    let prices = json(&ok(provdb(&data, &["price", "list", "--json"])));
    assert_eq!(prices.as_array().unwrap().len(), 2, "{prices}");
    ok(provdb(
        &data,
        &[
            "account",
            "credit",
            ASKER,
            "5000000",
            "--reason",
            "card payment",
        ],
    ));
    let ask = |extra: &[&str]| {
        let mut args = vec![
            "ask",
            "aero",
            "What is the zorblat coefficient of the krellian wing?",
            "-k",
            "2",
            "--attribution",
            "loo",
            "--max-tokens",
            "24",
            "--json",
        ];
        args.extend_from_slice(extra);
        provdb(&data, &args)
    };
    // No paying account, or a cap below the price: exit 1, nothing recorded.
    for (extra, says) in [
        (&[][..], "needs a paying account"),
        (
            &["--as", ASKER, "--max-fee", "999999"][..],
            "costs up to 1000000 wei",
        ),
    ] {
        let refused = ask(extra);
        assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
        assert!(stderr(&refused).contains(says), "{}", stderr(&refused));
    }
    let answer = json(&ok(ask(&["--as", ASKER, "--max-fee", "1000000"])));
    for field in ["answer_id", "answer", "citations", "split", "usage"] {
        assert!(!answer[field].is_null(), "{field} missing: {answer}");
    }
    assert_eq!(answer["fee_wei"], "1000000");
    let split = answer["split"].as_array().unwrap();
    let total: u128 = split
        .iter()
        .map(|p| p["amount_wei"].as_str().unwrap().parse::<u128>().unwrap())
        .sum();
    assert_eq!(total, 1_000_000);
    // The model's price less the protocol's 5 %.
    assert!(
        split
            .iter()
            .any(|p| p["to"] == OWNER && p["amount_wei"] == "95000"),
        "{answer}"
    );
    let account = json(&ok(provdb(&data, &["account", "show", ASKER, "--json"])));
    assert_eq!(account["balance_wei"], "4000000", "{account}");

    let verify = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert_eq!(verify["ok"], true);
    // The credit, the answer's charge, its payouts.
    assert_eq!(
        verify["entries"].as_u64().unwrap() as usize,
        2 + split.len()
    );
    let audit = json(&ok(provdb(
        &data,
        &["audit", "--contributor", OWNER, "--json"],
    )));
    assert_eq!(audit["accounts"][0]["amount_wei"], "95000");
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1);

    let epoch = json(&ok(provdb(&data, &["epoch", "close", "--json"])));
    assert_eq!(epoch["epoch"], 1);
    assert_eq!(epoch["total_wei"], "1000000");
    let again = provdb(&data, &["epoch", "close"]);
    assert_eq!(again.status.code(), Some(1), "nothing new to close");
    let proof = json(&ok(provdb(&data, &["epoch", "proof", OWNER, "--json"])));
    assert_eq!(proof["cumulative_wei"], "95000");
    // The asker takes the rest back: a payout of role `refund`, owed in the next epoch.
    ok(provdb(&data, &["account", "refund", ASKER]));
    let refunded = json(&ok(provdb(&data, &["epoch", "close", "--json"])));
    assert_eq!(refunded["total_wei"], "5000000");
    let proof = json(&ok(provdb(&data, &["epoch", "proof", ASKER, "--json"])));
    assert_eq!(proof["cumulative_wei"], "4000000");
    assert_eq!(proof["root"], epoch["root"]);
    let stranger = provdb(
        &data,
        &[
            "epoch",
            "proof",
            "0x0000000000000000000000000000000000000001",
        ],
    );
    assert_eq!(stranger.status.code(), Some(1));

    // Change one byte of entry 2 (the answer's charge) behind provdb's back: verify names it
    // and exits 1.
    {
        let store = provdb::storage::Store::open(
            data.join("storage"),
            provdb::storage::StoreOptions::default(),
        )
        .unwrap();
        let db = store.raw_db();
        let cf = db.cf_handle("ledger").unwrap();
        let key = 2u64.to_be_bytes();
        let mut value = db.get_cf(cf, key).unwrap().unwrap();
        let last = value.len() - 1;
        value[last] ^= 0x40;
        db.put_cf(cf, key, &value).unwrap();
    }
    let broken = provdb(&data, &["ledger", "verify", "--json"]);
    assert_eq!(broken.status.code(), Some(1));
    let report = json(&broken);
    assert_eq!(report["ok"], false);
    assert_eq!(report["broken"]["seq"], 2, "{report}");
    assert!(stderr(&broken).contains("entry 2"), "{}", stderr(&broken));
}

#[test]
fn bad_ask_requests_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "aero"]));
    for args in [
        vec!["ask", "nothing", "a question"],
        vec!["ask", "aero", "a question", "--max-fee", "-5"],
        vec!["ask", "aero", "a question", "--fee", "5"],
        vec!["ask", "aero", "a question", "--attribution", "magic"],
        vec!["ask", "aero", "a question", "--as", "not-an-address"],
    ] {
        let out = provdb(&data, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    }
    let verify = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert_eq!(verify["entries"], 0);
}

#[test]
fn a_newcomers_first_ask_works_with_no_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "t"]));
    let input = dir.path().join("t.jsonl");
    std::fs::write(
        &input,
        format!("{{\"text\":\"a shock wave forms ahead of a blunt body in supersonic flow\",\"contributor\":\"{ALICE}\"}}\n"),
    )
    .unwrap();
    ok(provdb(&data, &["ingest", "t", input.to_str().unwrap()]));
    let answer = json(&ok(provdb(
        &data,
        &[
            "ask",
            "t",
            "What forms ahead of a blunt body?",
            "--max-tokens",
            "12",
            "--json",
        ],
    )));
    assert_eq!(answer["fee_wei"], "0", "a new Datanet is free: {answer}");
    // The Datanet's owner (its treasury) is the local operator, whose key the CLI made.
    let info = json(&ok(provdb(&data, &["datanet", "show", "t", "--json"])));
    let operator = json(&ok(provdb(&data, &["account", "show", "--json"])));
    assert_eq!(info["owner"], operator["address"], "{info}");
    assert!(data.join("operator.key").exists());
    let verify = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert_eq!(verify["ok"], true);
}
