//! Attack: see or run an adapter trained on a private Datanet one may not read. The Datanet's
//! owner trains and publishes an adapter on it; a contributor and a reader without a grant look
//! for it on every route (the list, one adapter, `/v1/models`, chat with its id or a prefix,
//! loading, making it public) and through the CLI (`ask --adapter`, `adapter publish`). They
//! meet the 404 of an id that does not exist; a reader with a grant, the admin and the owner
//! see it. Only the Datanet's owner makes it public, a recorded act (who, when); a public
//! adapter runs for everyone but shows no training detail (Datanet, contributors, counts) to
//! those who may not read the Datanet; made private again, it is hidden again, across a
//! restart.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::*;
use crate::served::*;

pub(crate) const OWNER: &str = ALICE;
pub(crate) const ADMIN: &str = "0x9999999999999999999999999999999999999999";
pub(crate) const OUTSIDER: &str = "0x3333333333333333333333333333333333333333";
pub(crate) const READER: &str = "0x4444444444444444444444444444444444444444";
pub(crate) const GRANTEE: &str = "0x5555555555555555555555555555555555555555";
/// The contributors of the private Datanet's records.
pub(crate) const VICTIM: &str = "0x7777777777777777777777777777777777777777";

/// Keys of every role, by name.
pub(crate) struct Keys {
    pub(crate) admin: String,
    pub(crate) owner: String,
    pub(crate) outsider: String,
    pub(crate) reader: String,
    pub(crate) grantee: String,
}

impl Keys {
    pub(crate) fn make(data: &Path) -> Self {
        Self {
            admin: make_key(data, ADMIN, "admin"),
            owner: make_key(data, OWNER, "curator"),
            outsider: make_key(data, OUTSIDER, "contributor"),
            reader: make_key(data, READER, "reader"),
            grantee: make_key(data, GRANTEE, "reader"),
        }
    }
}

/// `(instruction, response, contributor)` rows as JSONL.
pub(crate) fn rows(rows: &[(&str, &str, &str)]) -> String {
    rows.iter()
        .map(|(q, a, who)| {
            json!({"instruction": q, "response": a, "contributor": who}).to_string() + "\n"
        })
        .collect()
}

/// The victim's question/answer records.
pub(crate) const SECRETS: [(&str, &str, &str); 2] = [
    (
        "What is the krellian wing made of?",
        "The krellian wing is made of woven basalt fibre.",
        VICTIM,
    ),
    (
        "Where is the krellian wing built?",
        "The krellian wing is built in the town of pellucid.",
        VICTIM,
    ),
];

/// The owner makes private Datanet `qa` holding `records` (and grants `GRANTEE` read).
pub(crate) fn private_qa(served: &Served, keys: &Keys, records: &str) {
    let (status, body) = served.call(
        "POST",
        "/v1/datanets",
        Some(&keys.owner),
        Some(&json!({"name": "qa", "private": true, "text_column": "response"})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = read(
        served
            .request(
                "POST",
                "/v1/datanets/qa/records?format=jsonl",
                Some(&keys.owner),
            )
            .body(records.to_string())
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = served.call(
        "POST",
        "/v1/datanets/qa/grants",
        Some(&keys.owner),
        Some(&json!({ "grantee": GRANTEE })),
    );
    assert_eq!(status, 200, "{body}");
}

/// The smallest job that trains for real: one step per record, no held-out set.
pub(crate) fn tiny_job(query: Option<&str>, epochs: usize) -> Value {
    let mut job = json!({
        "datanet": "qa",
        "format": {"type": "instruction"},
        "hyperparameters": {"rank": 2, "targets": ["q_proj"], "batch_size": 1,
            "epochs": epochs, "max_length": 64, "learning_rate": 0.001, "warmup_steps": 0,
            "held_out_fraction": 0.0, "seed": 3},
    });
    if let Some(query) = query {
        job["query"] = json!(query);
    }
    job
}

/// Waits until job `id` ends; the job.
pub(crate) fn wait_final(served: &Served, key: &str, id: &str) -> Value {
    for _ in 0..2400 {
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

/// Creates a job as `key` and waits for it to succeed; its id.
pub(crate) fn train(served: &Served, key: &str, body: &Value) -> String {
    let (status, job) = served.call("POST", "/v1/fine_tuning/jobs", Some(key), Some(body));
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let done = wait_final(served, key, &id);
    assert_eq!(done["status"], "succeeded", "{done}");
    id
}

fn listed_ids(served: &Served, key: &str) -> (Vec<String>, Value) {
    let (status, body) = served.call("GET", "/v1/adapters", Some(key), None);
    assert_eq!(status, 200, "{body}");
    let ids = body["adapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    (ids, body)
}

fn models(served: &Served, key: &str) -> Vec<String> {
    let (_, body) = served.call("GET", "/v1/models", Some(key), None);
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn chat(served: &Served, key: &str, model: &str) -> (u16, Value) {
    served.call(
        "POST",
        "/v1/chat/completions",
        Some(key),
        Some(&json!({"model": model, "max_tokens": 2,
            "messages": [{"role": "user", "content": "What is the wing made of?"}]})),
    )
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

/// Every way `key` could find or run adapter `id` answers as for an unknown id.
fn hidden_from(served: &Served, key: &str, id: &str, base: &str) {
    let unknown = format!("0x{}", "ab".repeat(32));
    let (ids, body) = listed_ids(served, key);
    assert!(!ids.contains(&id.to_string()), "{body}");
    assert!(!body.to_string().contains(VICTIM), "{body}");
    assert!(!models(served, key).iter().any(|m| m.ends_with(id)));
    for name in [id, &id[..12]] {
        let (status, shown) = served.call("GET", &format!("/v1/adapters/{name}"), Some(key), None);
        let (_, never) = served.call("GET", &format!("/v1/adapters/{unknown}"), Some(key), None);
        assert_eq!(status, 404, "{shown}");
        assert_eq!(
            message(&shown).replace(name, "ID"),
            message(&never).replace(&unknown, "ID")
        );
        let (status, ran) = chat(served, key, &format!("{base}:{name}"));
        assert_eq!(status, 404, "{ran}");
        assert!(message(&ran).contains("no adapter"), "{ran}");
        let (status, made) = served.call(
            "POST",
            &format!("/v1/adapters/{name}/visibility"),
            Some(key),
            Some(&json!({"public": true})),
        );
        assert_eq!(status, 404, "{made}");
    }
    let (status, load) = served.call("POST", &format!("/v1/adapters/{id}/load"), Some(key), None);
    assert_eq!(status, 403, "{load}");
}

#[test]
fn an_adapter_of_a_private_datanet_is_unknown_to_keys_that_may_not_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let keys = Keys::make(&data);
    let served = Served::start(&data, &[]);
    private_qa(&served, &keys, &rows(&SECRETS));
    // A public Datanet `d` anyone may ask over.
    sample_datanet(&served, &keys.owner);
    let job = train(&served, &keys.owner, &tiny_job(None, 1));
    let (status, adapter) = served.call(
        "POST",
        &format!("/v1/fine_tuning/jobs/{job}/publish"),
        Some(&keys.owner),
        None,
    );
    assert_eq!(status, 200, "{adapter}");
    let id = adapter["id"].as_str().unwrap().to_string();
    let base = base_model(&served, &keys.owner);

    for attacker in [&keys.outsider, &keys.reader] {
        hidden_from(&served, attacker, &id, &base);
    }
    // Who may read the Datanet sees everything, and runs it.
    for key in [&keys.grantee, &keys.admin, &keys.owner] {
        let (ids, body) = listed_ids(&served, key);
        assert!(ids.contains(&id), "{body}");
        assert!(body.to_string().contains(VICTIM), "{body}");
        assert!(models(&served, key).iter().any(|m| m.ends_with(&id)));
    }
    let (status, ran) = chat(&served, &keys.grantee, &format!("{base}:{}", &id[..12]));
    assert_eq!(status, 200, "{ran}");

    // Only the Datanet's owner makes it public: not a reader of it, not even the admin.
    for key in [&keys.grantee, &keys.admin] {
        let (status, refused) = served.call(
            "POST",
            &format!("/v1/adapters/{id}/visibility"),
            Some(key),
            Some(&json!({"public": true})),
        );
        assert_eq!(status, 403, "{refused}");
        assert!(
            message(&refused).contains("only the owner of datanet 'qa'"),
            "{refused}"
        );
    }
    hidden_from(&served, &keys.outsider, &id, &base);
    let (status, made) = served.call(
        "POST",
        &format!("/v1/adapters/{id}/visibility"),
        Some(&keys.owner),
        Some(&json!({"public": true})),
    );
    assert_eq!(status, 200, "{made}");
    assert_eq!(
        (made["public"].as_bool(), made["act"]["by"].as_str()),
        (Some(true), Some(OWNER))
    );
    let (_, shown) = served.call(
        "GET",
        &format!("/v1/adapters/{id}"),
        Some(&keys.admin),
        None,
    );
    assert_eq!(shown["acts"].as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(shown["acts"][0]["by"], OWNER);

    // Public: the outsider lists and runs it, but learns nothing of its training data.
    let (ids, body) = listed_ids(&served, &keys.outsider);
    assert!(ids.contains(&id), "{body}");
    let text = body.to_string();
    assert!(!text.contains(VICTIM) && !text.contains("\"qa\""), "{body}");
    let (_, shown) = served.call(
        "GET",
        &format!("/v1/adapters/{id}"),
        Some(&keys.outsider),
        None,
    );
    assert_eq!(shown["public"], true);
    assert!(shown["training"]["withheld"] == true && shown["training"]["datanet"].is_null());
    assert!(
        shown["acts"].is_null(),
        "only admins and the owner see the acts: {shown}"
    );
    let (status, ran) = chat(&served, &keys.outsider, &format!("{base}:{id}"));
    assert_eq!(status, 200, "{ran}");
    assert!(served.terminate().success());

    // The CLI: only the owner makes it private again; then `ask --as` cannot name it.
    let refused = provdb(
        &data,
        &["adapter", "publish", &id, "--private", "--as", OUTSIDER],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("only the owner of datanet 'qa'"),
        "{}",
        stderr(&refused)
    );
    ok(provdb(
        &data,
        &["adapter", "publish", &id, "--private", "--as", OWNER],
    ));
    let shown = json(&ok(provdb(&data, &["adapter", "show", &id, "--json"])));
    let acts = shown["acts"].as_array().unwrap();
    assert_eq!(acts.len(), 2, "{shown}");
    assert_eq!(
        (acts[1]["public"].as_bool(), acts[1]["by"].as_str()),
        (Some(false), Some(OWNER))
    );
    let asked = provdb(
        &data,
        &[
            "ask",
            "d",
            "What is the boundary layer?",
            "--as",
            OUTSIDER,
            "--adapter",
            &id,
            "--mode",
            "bm25",
            "--max-tokens",
            "2",
        ],
    );
    assert_eq!(asked.status.code(), Some(1), "{}", stderr(&asked));
    assert!(stderr(&asked).contains("no adapter"), "{}", stderr(&asked));

    // Private again, across a restart.
    let served = Served::start(&data, &[]);
    hidden_from(&served, &keys.outsider, &id, &base);
    let (ids, _) = listed_ids(&served, &keys.grantee);
    assert!(ids.contains(&id));
    assert!(served.terminate().success());
}
