//! A reader who wants to see a private Datanet: its name, text, counts, owner, the questions
//! asked over it, and the operator's RPC key. Played through `provdb serve` with the real
//! SmolLM2 and MiniLM (cited answers made by the server itself), and against a real anvil for
//! what `chain sync` publishes.
//!
//! The attacker (mallory, a reader without a grant) must see no private name, text, count or
//! question anywhere: SQL over every table, the ledger routes, metrics, chain status, the
//! Datanet list and every error message; the owner, the grantee and the admin keep seeing
//! what they may.

use serde_json::{Value, json};

use crate::anvil::{Anvil, chain, key_file, pay_and_close};
use crate::common::*;
use crate::served::*;

const ADMIN: &str = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BOB: &str = "0x2222222222222222222222222222222222222222";
const MALLORY: &str = "0x6666666666666666666666666666666666666666";
/// In the private Datanet's records only.
const TEXT_CANARY: &str = "zebracanary";
/// In the questions asked over the private Datanet only.
const QUESTION_CANARY: &str = "QUESTIONCANARY";
const PRIVATE: &str = "vaultnet";

struct Keys {
    alice: String,
    bob: String,
    mallory: String,
    admin: String,
}

fn upload(served: &Served, key: &str, datanet: &str, texts: &[&str]) {
    let body = texts
        .iter()
        .map(|t| json!({ "text": t }).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let (status, answer) = read(
        served
            .request(
                "POST",
                &format!("/v1/datanets/{datanet}/records?format=jsonl"),
                Some(key),
            )
            .body(body)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
}

/// A cited answer made by the server over `datanets`, asked by `key`; its id.
fn ask(served: &Served, key: &str, question: &str, datanets: &[&str]) -> String {
    let model = base_model(served, key);
    let (status, body) = served.call(
        "POST",
        "/v1/chat/completions",
        Some(key),
        Some(&json!({
            "model": model,
            "messages": [{"role": "user", "content": question}],
            "datanets": datanets,
            "k": 2,
            "max_tokens": 12,
            "attribution": "loo",
        })),
    );
    assert_eq!(status, 200, "{body}");
    let used = body["citations"].as_array().map_or(0, Vec::len);
    assert!(used > 0, "leave-one-out names the sources used: {body}");
    body["answer_id"].as_str().unwrap().to_string()
}

fn sql(served: &Served, key: &str, query: &str) -> (u16, Value) {
    served.call(
        "POST",
        "/v1/sql",
        Some(key),
        Some(&json!({ "query": query })),
    )
}

/// Everything the reader without a grant must never see.
fn assert_hidden(what: &str, text: &str, private_answers: &[String]) {
    for secret in [PRIVATE, TEXT_CANARY, QUESTION_CANARY]
        .iter()
        .copied()
        .chain(private_answers.iter().map(String::as_str))
    {
        assert!(
            !text.contains(secret),
            "{what} shows {secret} to a reader without a grant: {text}"
        );
    }
}

/// The server, with alice's private `vaultnet` (a grant to bob) and the public `opennet`,
/// and three answers made by the server: alice's over both, bob's over `vaultnet`, mallory's
/// over `opennet`. Returns the private answers' ids and mallory's.
fn setup(served: &Served, keys: &Keys) -> (Vec<String>, String) {
    for (name, private) in [("opennet", false), (PRIVATE, true)] {
        let (status, body) = served.call(
            "POST",
            "/v1/datanets",
            Some(&keys.alice),
            Some(&json!({"name": name, "private": private, "license": "MIT"})),
        );
        assert_eq!(status, 201, "{body}");
    }
    upload(
        served,
        &keys.alice,
        "opennet",
        &[
            "The boundary layer on the wing thickens near the trailing edge.",
            "Lift grows with the angle of attack until the wing stalls.",
        ],
    );
    upload(
        served,
        &keys.alice,
        PRIVATE,
        &[
            &format!("The {TEXT_CANARY} wing keeps its boundary layer attached with slots."),
            &format!("The {TEXT_CANARY} flap doubles lift at landing."),
            &format!("The {TEXT_CANARY} spar is carbon."),
        ],
    );
    let (status, body) = served.call(
        "POST",
        &format!("/v1/datanets/{PRIVATE}/grants"),
        Some(&keys.alice),
        Some(&json!({ "grantee": BOB })),
    );
    assert_eq!(status, 200, "{body}");
    // Both Datanets are priced and every asker funded, so the answers pay someone.
    for name in ["opennet", PRIVATE] {
        price_datanet(served, &keys.alice, name, 1000);
    }
    for asker in [ALICE, BOB, MALLORY] {
        credit(served, &keys.admin, asker, 1_000_000);
    }
    let alices = ask(
        served,
        &keys.alice,
        &format!("{QUESTION_CANARY} alice: how does the wing keep its boundary layer?"),
        &["opennet", PRIVATE],
    );
    let bobs = ask(
        served,
        &keys.bob,
        &format!("{QUESTION_CANARY} bob: what doubles lift at landing?"),
        &[PRIVATE],
    );
    let mallorys = ask(
        served,
        &keys.mallory,
        "when does the wing stall?",
        &["opennet"],
    );
    let (status, body) = served.call("POST", "/v1/epochs", Some(&keys.admin), None);
    assert_eq!(status, 200, "{body}");
    (vec![alices, bobs], mallorys)
}

#[test]
fn a_reader_without_a_grant_sees_no_private_name_text_count_or_question() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let keys = Keys {
        alice: make_key(&data, ALICE, "curator"),
        bob: make_key(&data, BOB, "reader"),
        mallory: make_key(&data, MALLORY, "reader"),
        admin: make_key(&data, ADMIN, "admin"),
    };
    let served = Served::start(&data, &[]);
    let (private_answers, mallorys) = setup(&served, &keys);
    let mallory = keys.mallory.as_str();
    // What the owner holds before the attack: her records and everyone's balances.
    let holdings = |key: &str| {
        let query = "SELECT (SELECT count(*) FROM records) AS records, \
                     (SELECT CAST(sum(cumulative_wei) AS VARCHAR) FROM balances) AS paid";
        sql(&served, key, query).1["rows"].clone()
    };
    let before = holdings(&keys.alice);

    // Asking over the private Datanet: as unknown as a name that never existed, and unpaid.
    let model = base_model(&served, mallory);
    let over = |datanet: &str| {
        let body = json!({
            "model": model,
            "messages": [{"role": "user", "content": "what is in it?"}],
            "datanets": [datanet],
        });
        served.call("POST", "/v1/chat/completions", Some(mallory), Some(&body))
    };
    let ((status, body), (_, never)) = (over(PRIVATE), over("nosuchnet"));
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body.to_string().replace(PRIVATE, "NAME"),
        never.to_string().replace("nosuchnet", "NAME")
    );

    // Every SQL table, whole.
    for table in [
        "datanets",
        "records",
        "chunks",
        "grants",
        "attributions",
        "citations",
        "epochs",
        "balances",
        "prices",
        "accounts",
        "deposits",
        "opennet",
    ] {
        let (status, body) = sql(&served, mallory, &format!("SELECT * FROM {table}"));
        assert_eq!(status, 200, "{table}: {body}");
        assert_hidden(table, &body.to_string(), &private_answers);
    }
    // The private table is as unknown as one that never existed.
    let (status, body) = sql(&served, mallory, &format!("SELECT * FROM {PRIVATE}"));
    let (unknown_status, unknown) = sql(&served, mallory, "SELECT * FROM nosuchnet");
    assert_eq!((status, unknown_status), (400, 400), "{body} {unknown}");
    assert_eq!(
        body.to_string().replace(PRIVATE, "NAME"),
        unknown.to_string().replace("nosuchnet", "NAME")
    );
    // Her own answer is there, with her question; no row of the answers over the private
    // Datanet is, not even the model's or the protocol's.
    let (_, answers) = sql(
        &served,
        mallory,
        "SELECT DISTINCT answer_id FROM attributions",
    );
    assert!(answers.to_string().contains(&mallorys), "{answers}");
    let (_, questions) = sql(
        &served,
        mallory,
        "SELECT DISTINCT question FROM citations WHERE question IS NOT NULL",
    );
    assert_eq!(
        questions["rows"],
        json!([{"question": "when does the wing stall?"}]),
        "{questions}"
    );
    // The ledger routes read the same tables.
    let (_, entries) = served.call("GET", "/v1/ledger/entries?limit=1000", Some(mallory), None);
    assert_hidden("/v1/ledger/entries", &entries.to_string(), &private_answers);
    for id in &private_answers {
        let path = format!("/v1/ledger/entries?answer_id={id}");
        let (status, entries) = served.call("GET", &path, Some(mallory), None);
        assert_eq!(
            (status, &entries["entries"]),
            (200, &json!([])),
            "{entries}"
        );
    }
    // The Datanet list, the Datanet itself, search.
    let (_, list) = served.call("GET", "/v1/datanets", Some(mallory), None);
    assert_hidden("/v1/datanets", &list.to_string(), &private_answers);
    let (status, shown) = served.call(
        "GET",
        &format!("/v1/datanets/{PRIVATE}"),
        Some(mallory),
        None,
    );
    let (_, never) = served.call("GET", "/v1/datanets/nosuchnet", Some(mallory), None);
    assert_eq!(status, 404, "{shown}");
    assert_eq!(
        shown.to_string().replace(PRIVATE, "NAME"),
        never.to_string().replace("nosuchnet", "NAME")
    );
    // Metrics: no key, or a reader's, shows no figure that counts stored data.
    for key in [None, Some(mallory)] {
        let (status, metrics) = served.call("GET", "/metrics", key, None);
        let metrics = metrics.as_str().unwrap().to_string();
        assert_eq!(status, 200);
        assert_hidden("/metrics", &metrics, &private_answers);
        assert!(!metrics.contains("ledger_entries"), "{metrics}");
        assert!(!metrics.contains("index_lag"), "{metrics}");
        assert!(
            metrics.contains("provdb_generated_tokens_total"),
            "{metrics}"
        );
    }
    let (status, refused) = served.call("GET", "/metrics", Some("pdb_nope_nope"), None);
    assert_eq!(status, 401, "{refused}");
    let (_, metrics) = served.call("GET", "/metrics", Some(&keys.admin), None);
    assert!(
        metrics.as_str().unwrap().contains("provdb_ledger_entries"),
        "{metrics}"
    );
    let (_, status_body) = served.call("GET", "/v1/chain/status", Some(mallory), None);
    assert_eq!(status_body, json!({"configured": false}));

    // The owner, the grantee and the admin still see theirs; nothing of hers changed.
    assert_eq!(holdings(&keys.alice), before);
    let questions = |key: &str| {
        sql(
            &served,
            key,
            "SELECT DISTINCT question FROM citations WHERE question IS NOT NULL ORDER BY 1",
        )
        .1
        .to_string()
    };
    let answer_ids = |key: &str| {
        sql(&served, key, "SELECT DISTINCT answer_id FROM attributions")
            .1
            .to_string()
    };
    for key in [&keys.alice, &keys.admin] {
        let seen = questions(key);
        assert!(
            seen.contains("alice: how") && seen.contains("bob: what"),
            "{seen}"
        );
        assert!(
            private_answers
                .iter()
                .all(|id| answer_ids(key).contains(id))
        );
    }
    // Bob reads both Datanets: he sees both answers' rows, but only his own question.
    assert!(
        private_answers
            .iter()
            .all(|id| answer_ids(&keys.bob).contains(id))
    );
    let bobs = questions(&keys.bob);
    assert!(
        bobs.contains("bob: what") && !bobs.contains("alice: how"),
        "{bobs}"
    );
    let (_, listed) = served.call("GET", "/v1/datanets", Some(&keys.bob), None);
    assert!(listed.to_string().contains(PRIVATE), "{listed}");
}

#[test]
fn a_taken_private_name_says_only_that_it_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let alice = make_key(&data, ALICE, "curator");
    let mallory = make_key(&data, MALLORY, "curator");
    let served = Served::start(&data, &[]);
    for (name, private) in [("opennet", false), (PRIVATE, true)] {
        let body = json!({"name": name, "private": private});
        let (status, answer) = served.call("POST", "/v1/datanets", Some(&alice), Some(&body));
        assert_eq!(status, 201, "{answer}");
    }
    // The documented leak: a creator learns that the name is taken, and nothing else (the
    // same refusal as for a public name: no owner, no visibility, no count).
    let refusal = |name: &str| {
        let body = json!({"name": name, "private": true});
        served.call("POST", "/v1/datanets", Some(&mallory), Some(&body))
    };
    let (status, taken_private) = refusal(PRIVATE);
    let (public_status, taken_public) = refusal("opennet");
    assert_eq!((status, public_status), (400, 400), "{taken_private}");
    assert_eq!(
        taken_private.to_string().replace(PRIVATE, "NAME"),
        taken_public.to_string().replace("opennet", "NAME")
    );
    assert!(
        !taken_private.to_string().contains(&ALICE[2..]),
        "{taken_private}"
    );
    // Nothing of hers changed.
    let (_, list) = served.call("GET", "/v1/datanets", Some(&alice), None);
    assert_eq!(list["datanets"].as_array().unwrap().len(), 2, "{list}");
}

#[test]
fn chain_sync_publishes_nothing_of_a_private_datanet_and_status_hides_the_rpc_key() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "aero"]));
    ok(provdb(
        &data,
        &["datanet", "create", PRIVATE, "--private", "--owner", BOB],
    ));
    crate::anvil::ingest(&data, dir.path(), "aero", &["lift and drag", "shock waves"]);
    crate::anvil::ingest(
        &data,
        dir.path(),
        PRIVATE,
        &[
            "slotted flaps keep the boundary layer attached at landing",
            "a carbon spar carries the bending load of the wing",
            "vortex generators delay separation on the outer wing",
            "the winglet reduces induced drag in cruise",
            "a swept wing delays the drag rise near the speed of sound",
        ],
    );
    crate::anvil::ingest(&data, dir.path(), "aero", &["heat transfer"]);
    // A contributor of the private Datanet is owed money: it must still be able to claim.
    let contributor = anvil.accounts[2].as_str();
    pay_and_close(&data, &[(contributor, 7_000)], 1);

    // An adapter trained on the private Datanet, with an owner: it stays off chain too.
    let trained = crate::anvil::train_tiny_adapter(&data, PRIVATE, BOB);
    let trained_id = trained["id"].as_str().unwrap().to_string();

    let operator = key_file(&anvil.keys[0]);
    let operator = operator.as_str();
    let deployed = crate::anvil::deploy(&data, &anvil);
    let registry = deployed["registry"].as_str().unwrap().to_string();
    // The answers were paid from an off-chain credit: the operator backs them on chain.
    ok(chain(
        &data,
        &anvil,
        &["fund", "7000", "--key-file", operator],
    ));
    let synced = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key-file", operator, "--json"],
    )));
    let id_of = |name: &str| {
        json(&ok(provdb(&data, &["datanet", "show", name, "--json"])))["id"]
            .as_u64()
            .unwrap()
    };
    let (aero_id, private_id) = (id_of("aero"), id_of(PRIVATE));
    assert_eq!(synced["datanets_registered"], json!([aero_id]), "{synced}");
    assert_eq!(synced["adapters_registered"], json!([]), "{synced}");
    let adapter = anvil.cast_ok(&[
        "call",
        &registry,
        "adapters(bytes32)(address,bytes32,bytes32)",
        &trained_id,
    ]);
    assert!(!adapter.to_lowercase().contains(&BOB[2..]), "{adapter}");
    let anchored = synced["batches_anchored"].as_array().unwrap();
    assert_eq!(anchored.len(), 2, "aero's two batches only: {synced}");
    assert!(
        anchored.iter().all(|b| b["datanet_id"] == aero_id),
        "{synced}"
    );

    // Read from outside: no registration, no batch, no owner, no name hash of the private one.
    let on_chain = anvil.cast_ok(&[
        "call",
        &registry,
        "datanets(uint32)(address,bytes32,uint64,uint64,bool)",
        &private_id.to_string(),
    ]);
    assert!(on_chain.ends_with("false"), "{on_chain}");
    assert!(!on_chain.to_lowercase().contains(&BOB[2..]), "{on_chain}");
    let registered = anvil.event_logs(
        &registry,
        "DatanetRegistered(uint32 indexed,address indexed,bytes32)",
    );
    let batches = anvil.event_logs(
        &registry,
        "BatchAnchored(uint32 indexed,uint64,uint64,bytes32,uint32)",
    );
    assert_eq!((registered.len(), batches.len()), (1, 2));
    let name_hash = provdb::storage::hex32(&provdb::storage::keccak256(PRIVATE.as_bytes()));
    for text in [json!(registered).to_string(), json!(batches).to_string()] {
        assert!(!text.to_lowercase().contains(&BOB[2..]), "{text}");
        assert!(!text.contains(name_hash.trim_start_matches("0x")), "{text}");
    }
    let total_records = anvil.cast_ok(&[
        "call",
        &registry,
        "datanets(uint32)(address,bytes32,uint64,uint64,bool)",
        &aero_id.to_string(),
    ]);
    assert!(
        total_records
            .lines()
            .nth(3)
            .is_some_and(|n| n.starts_with('3')),
        "{total_records}"
    );
    // A second sync has nothing left to do (the private batches are not "pending").
    let again = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key-file", operator, "--json"],
    )));
    assert_eq!(again["batches_anchored"], json!([]), "{again}");
    let status = json(&ok(chain(&data, &anvil, &["status", "--json"])));
    assert_eq!(status["pending_batches"], 0, "{status}");
    assert_eq!(status["local_batches"], 2, "{status}");
    // The contributor still claims exactly its balance.
    let before = anvil.balance(contributor);
    let claim = json(&ok(chain(
        &data,
        &anvil,
        &[
            "claim",
            contributor,
            "--key-file",
            &key_file(&anvil.keys[4]),
            "--json",
        ],
    )));
    assert_eq!(claim["paid_wei"], "7000", "{claim}");
    assert_eq!(anvil.balance(contributor), before + 7_000);

    // The RPC URL's key does not reach any API key, reachable or not.
    let state = provdb_chain::ChainState::load(&data).unwrap();
    let reader = make_key(&data, MALLORY, "reader");
    let key = "SECRETPROVIDERKEY42";
    let host_port = anvil.url.trim_start_matches("http://").to_string();
    for (url, reachable) in [
        (format!("{}/?apikey={key}", anvil.url), true),
        (format!("http://user:{key}@{host_port}"), true),
        (format!("http://127.0.0.1:1/v2/{key}?apikey={key}"), false),
    ] {
        let mut changed = state.clone();
        changed.rpc_url = url.clone();
        changed.save(&data).unwrap();
        let served = Served::start(&data, &[]);
        let (status, body) = served.call("GET", "/v1/chain/status", Some(&reader), None);
        assert_eq!(status, 200, "{body}");
        assert!(!body.to_string().contains(key), "{url}: {body}");
        assert_eq!(body["reachable"], reachable, "{url}: {body}");
        if reachable {
            assert_eq!(body["status"]["rpc_url"], anvil.url.as_str(), "{body}");
        } else {
            assert!(!body["error"].as_str().unwrap().is_empty(), "{body}");
        }
        drop(served);
    }
}
