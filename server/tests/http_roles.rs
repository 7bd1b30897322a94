//! Every route of `provdb serve` walked by every kind of caller (no key, a reader, a reader
//! granted the private Datanet, a contributor, the owning curator, an admin), with the real
//! SmolLM2 and MiniLM: statuses as docs/http-api.md says, a private Datanet invisible (404,
//! never 403) to whoever may not read it, SQL counts that differ by what each may read, and no
//! private name in metrics or in the messages an outsider gets.

use serde_json::{Value, json};

use crate::common::*;
use crate::served::*;

const ADMIN: &str = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BOB: &str = "0x2222222222222222222222222222222222222222";
const CAROL: &str = "0x3333333333333333333333333333333333333333";
const DAVE: &str = "0x4444444444444444444444444444444444444444";
const ERIN: &str = "0x5555555555555555555555555555555555555555";
const WHO: [&str; 6] = ["nobody", "carol", "dave", "bob", "alice", "admin"];

fn notes(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            json!({"text": format!("{prefix} note {i}: the boundary layer on the wing thickens near the trailing edge")})
                .to_string()
                + "\n"
        })
        .collect()
}

struct Walk<'a> {
    served: &'a Served,
    keys: [Option<String>; 6],
}

impl Walk<'_> {
    /// Calls the route as each caller and checks the statuses; returns the bodies.
    fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        statuses: [u16; 6],
    ) -> Vec<Value> {
        let mut bodies = Vec::new();
        for (i, expected) in statuses.iter().enumerate() {
            let (status, answer) = self
                .served
                .call(method, path, self.keys[i].as_deref(), body);
            assert_eq!(status, *expected, "{method} {path} as {}: {answer}", WHO[i]);
            if status == 404 || status == 403 {
                let message = answer.to_string();
                assert!(
                    !message.contains("private"),
                    "{method} {path} as {}: the message says too much: {message}",
                    WHO[i]
                );
            }
            bodies.push(answer);
        }
        bodies
    }

    fn upload(&self, datanet: &str, who: usize, text: &str) -> (u16, Value) {
        read(
            self.served
                .request(
                    "POST",
                    &format!("/v1/datanets/{datanet}/records?format=jsonl&filename=notes.jsonl"),
                    self.keys[who].as_deref(),
                )
                .body(text.to_string())
                .send()
                .unwrap(),
        )
    }
}

#[test]
fn every_route_answers_every_role_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let keys = [
        None,
        Some(make_key(&data, CAROL, "reader")),
        Some(make_key(&data, DAVE, "reader")),
        Some(make_key(&data, BOB, "contributor")),
        Some(make_key(&data, ALICE, "curator")),
        Some(make_key(&data, ADMIN, "admin")),
    ];
    let adapters = dir.path().join("peft");
    ok(provdb(
        &data,
        &[
            "adapter",
            "random",
            adapters.to_str().unwrap(),
            "--count",
            "1",
            "--rank",
            "4",
        ],
    ));
    let added = json(&ok(provdb(
        &data,
        &[
            "adapter",
            "add",
            adapters.to_str().unwrap(),
            "--owner",
            BOB,
            "--json",
        ],
    )));
    let adapter = added[0]["id"].as_str().unwrap().to_string();
    let served = Served::start(&data, &[]);
    let walk = Walk {
        served: &served,
        keys,
    };
    let (alice, admin) = (4, 5);

    // The owner makes a public and a private Datanet and fills them.
    for (name, private) in [("opennet", false), ("secretnet", true)] {
        let (status, body) = served.call(
            "POST",
            "/v1/datanets",
            walk.keys[alice].as_deref(),
            Some(&json!({"name": name, "private": private, "license": "MIT"})),
        );
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["owner"], ALICE);
        let (status, body) = walk.upload(name, alice, &notes(name, 3));
        assert_eq!(
            (status, body["accepted"].as_u64()),
            (200, Some(3)),
            "{body}"
        );
    }
    // Dave asks for access and is granted it; carol asks and is not.
    for who in [2, 1] {
        let (status, _) = served.call(
            "POST",
            "/v1/datanets/secretnet/access-requests",
            walk.keys[who].as_deref(),
            Some(&json!({"message": "please"})),
        );
        assert_eq!(status, 202);
    }
    let (status, pending) = served.call(
        "GET",
        "/v1/datanets/secretnet/grants",
        walk.keys[alice].as_deref(),
        None,
    );
    assert_eq!(status, 200);
    let requesters: Vec<&str> = pending["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    assert!(
        requesters.contains(&DAVE) && requesters.contains(&CAROL),
        "{pending}"
    );
    let (status, _) = served.call(
        "POST",
        "/v1/datanets/secretnet/grants",
        walk.keys[alice].as_deref(),
        Some(&json!({"grantee": DAVE})),
    );
    assert_eq!(status, 200);

    let model = {
        let (_, body) = served.call("GET", "/v1/models", walk.keys[alice].as_deref(), None);
        body["data"][0]["id"].as_str().unwrap().to_string()
    };
    let private_record = {
        let (_, body) = served.call(
            "GET",
            "/v1/datanets/secretnet/records?limit=1",
            walk.keys[alice].as_deref(),
            None,
        );
        body["records"][0]["record_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let public_record = {
        let (_, body) = served.call(
            "GET",
            "/v1/datanets/opennet/records?limit=1",
            walk.keys[alice].as_deref(),
            None,
        );
        body["records"][0]["record_id"]
            .as_str()
            .unwrap()
            .to_string()
    };

    walk.expect("GET", "/v1/me", None, [401, 200, 200, 200, 200, 200]);
    let lists = walk.expect("GET", "/v1/datanets", None, [401, 200, 200, 200, 200, 200]);
    let sees_secret: Vec<bool> = lists
        .iter()
        .map(|l| l.to_string().contains("secretnet"))
        .collect();
    assert_eq!(sees_secret, [false, false, true, false, true, true]);
    walk.expect(
        "GET",
        "/v1/datanets/secretnet",
        None,
        [401, 404, 200, 404, 200, 200],
    );
    walk.expect(
        "GET",
        "/v1/datanets/nosuchnet",
        None,
        [401, 404, 404, 404, 404, 404],
    );
    walk.expect(
        "GET",
        "/v1/datanets/opennet",
        None,
        [401, 200, 200, 200, 200, 200],
    );
    for (i, expected) in [(0, 401), (1, 403), (2, 403), (3, 404), (4, 200), (5, 200)] {
        assert_eq!(
            walk.upload("secretnet", i, &notes(WHO[i], 1)).0,
            expected,
            "upload to secretnet as {}",
            WHO[i]
        );
    }
    for (i, expected) in [(0, 401), (1, 403), (2, 403), (3, 200), (4, 200), (5, 200)] {
        assert_eq!(
            walk.upload("opennet", i, &notes(&format!("open-{}", WHO[i]), 1))
                .0,
            expected,
            "upload to opennet as {}",
            WHO[i]
        );
    }
    walk.expect(
        "GET",
        "/v1/datanets/secretnet/records",
        None,
        [401, 404, 200, 404, 200, 200],
    );
    walk.expect(
        "GET",
        &format!("/v1/records/{private_record}"),
        None,
        [401, 404, 200, 404, 200, 200],
    );
    walk.expect(
        "GET",
        &format!("/v1/records/{public_record}"),
        None,
        [401, 200, 200, 200, 200, 200],
    );
    walk.expect(
        "PATCH",
        &format!("/v1/records/{public_record}"),
        Some(&json!({"quality": 0.9})),
        [401, 403, 403, 403, 200, 200],
    );
    walk.expect(
        "PATCH",
        &format!("/v1/records/{private_record}"),
        Some(&json!({"status": "approved"})),
        [401, 404, 403, 404, 200, 200],
    );
    walk.expect(
        "POST",
        "/v1/datanets/nosuchnet/access-requests",
        None,
        [401, 202, 202, 202, 202, 202],
    );
    walk.expect(
        "GET",
        "/v1/datanets/secretnet/grants",
        None,
        [401, 404, 403, 404, 200, 200],
    );
    walk.expect(
        "GET",
        "/v1/datanets/opennet/grants",
        None,
        [401, 403, 403, 403, 200, 200],
    );
    walk.expect(
        "POST",
        "/v1/datanets/secretnet/grants",
        Some(&json!({"grantee": ERIN})),
        [401, 404, 403, 404, 200, 200],
    );
    walk.expect(
        "DELETE",
        &format!("/v1/datanets/secretnet/grants/{ERIN}"),
        None,
        [401, 404, 403, 404, 200, 200],
    );
    walk.expect(
        "POST",
        "/v1/datanets/secretnet/curators",
        Some(&json!({"address": ERIN})),
        [401, 404, 403, 404, 200, 200],
    );
    walk.expect(
        "DELETE",
        &format!("/v1/datanets/secretnet/curators/{ERIN}"),
        None,
        [401, 404, 403, 404, 200, 200],
    );
    walk.expect(
        "POST",
        "/v1/search",
        Some(&json!({"datanet": "secretnet", "query": "boundary layer", "k": 3})),
        [401, 404, 200, 404, 200, 200],
    );
    walk.expect(
        "POST",
        "/v1/search",
        Some(&json!({"datanet": "opennet", "query": "boundary layer", "k": 3})),
        [401, 200, 200, 200, 200, 200],
    );
    let counts = walk.expect(
        "POST",
        "/v1/sql",
        Some(&json!({"query": "SELECT count(*) AS n FROM records"})),
        [401, 200, 200, 200, 200, 200],
    );
    let n = |i: usize| counts[i]["rows"][0]["n"].as_u64().unwrap();
    assert!(
        n(2) > n(1),
        "dave reads the private records too: {} vs {}",
        n(2),
        n(1)
    );
    assert_eq!(
        (n(1), n(3)),
        (n(1), n(1)),
        "readers without a grant see the same rows"
    );
    assert_eq!((n(4), n(5)), (n(2), n(2)));
    walk.expect(
        "POST",
        "/v1/sql",
        Some(&json!({"query": "SELECT * FROM secretnet"})),
        [401, 400, 200, 400, 200, 200],
    );
    walk.expect("POST", "/v1/chat/completions",
        Some(&json!({"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]})),
        [401, 200, 200, 200, 200, 200]);
    walk.expect("POST", "/v1/chat/completions",
        Some(&json!({"model": format!("{model}:{adapter}"), "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]})),
        [401, 200, 200, 200, 200, 200]);
    let answers = walk.expect(
        "POST",
        "/v1/chat/completions",
        Some(
            &json!({"model": model, "max_tokens": 8, "datanets": ["secretnet"], "k": 2,
            "messages": [{"role": "user", "content": "What happens to the boundary layer?"}]}),
        ),
        [401, 404, 200, 404, 200, 200],
    );
    assert!(answers[2]["answer_id"].as_str().unwrap().starts_with("0x"));
    let paid: u128 = answers[2]["split"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["amount_wei"].as_str().unwrap().parse::<u128>().unwrap())
        .sum();
    let fee: u128 = answers[2]["fee_wei"].as_str().unwrap().parse().unwrap();
    assert_eq!(paid, fee, "the split sums to the fee");
    walk.expect(
        "POST",
        "/v1/embeddings",
        Some(&json!({"input": ["boundary layer", "shock wave"]})),
        [401, 200, 200, 200, 200, 200],
    );
    walk.expect("GET", "/v1/models", None, [401, 200, 200, 200, 200, 200]);
    let listed = walk.expect("GET", "/v1/adapters", None, [401, 200, 200, 200, 200, 200]);
    assert!(
        listed[1]["adapters"][0]["source"].is_null(),
        "no server path leaves the server"
    );
    // An adapter added from outside has no training Datanet: every key sees it, and no one
    // can make it public or private (it already is public).
    walk.expect(
        "GET",
        &format!("/v1/adapters/{adapter}"),
        None,
        [401, 200, 200, 200, 200, 200],
    );
    walk.expect(
        "POST",
        &format!("/v1/adapters/{adapter}/visibility"),
        Some(&json!({"public": false})),
        [401, 400, 400, 400, 400, 400],
    );
    walk.expect(
        "POST",
        &format!("/v1/adapters/{adapter}/load"),
        None,
        [401, 403, 403, 403, 403, 200],
    );
    walk.expect(
        "POST",
        &format!("/v1/adapters/{adapter}/unload"),
        None,
        [401, 403, 403, 403, 403, 200],
    );
    let entries = walk.expect(
        "GET",
        "/v1/ledger/entries?limit=50",
        None,
        [401, 200, 200, 200, 200, 200],
    );
    assert!(
        entries[1]["entries"].as_array().unwrap().is_empty(),
        "carol sees no entry of secretnet"
    );
    assert!(
        !entries[2]["entries"].as_array().unwrap().is_empty(),
        "dave sees his answer's entries"
    );
    walk.expect(
        "GET",
        "/v1/ledger/verify",
        None,
        [401, 200, 200, 200, 200, 200],
    );
    walk.expect("POST", "/v1/epochs", None, [401, 403, 403, 403, 403, 200]);
    walk.expect("GET", "/v1/epochs", None, [401, 200, 200, 200, 200, 200]);
    walk.expect(
        "GET",
        &format!("/v1/epochs/latest/proofs/{ALICE}"),
        None,
        [401, 200, 200, 200, 200, 200],
    );
    walk.expect(
        "GET",
        "/v1/chain/status",
        None,
        [401, 200, 200, 200, 200, 200],
    );
    // Removing: a contributor removes its own record, not another's.
    let bobs = {
        let (_, body) = served.call("POST", "/v1/sql", walk.keys[3].as_deref(),
            Some(&json!({"query": format!("SELECT record_id FROM records WHERE contributor = '{BOB}' AND status = 'approved'")})));
        body["rows"][0]["record_id"].as_str().unwrap().to_string()
    };
    assert_eq!(
        served
            .call(
                "DELETE",
                &format!("/v1/records/{public_record}"),
                walk.keys[3].as_deref(),
                None
            )
            .0,
        403
    );
    assert_eq!(
        served
            .call(
                "DELETE",
                &format!("/v1/records/{bobs}"),
                walk.keys[3].as_deref(),
                None
            )
            .0,
        200
    );
    // Open routes, and metrics that never name a Datanet.
    for path in ["/healthz", "/", "/app.js", "/style.css"] {
        assert_eq!(served.call("GET", path, None, None).0, 200, "{path}");
    }
    let (status, metrics) = served.call("GET", "/metrics", None, None);
    let metrics = metrics.as_str().unwrap().to_string();
    assert_eq!(status, 200);
    assert!(
        !metrics.contains("secretnet") && !metrics.contains("opennet"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="/v1/datanets/{name}""#),
        "{metrics}"
    );
    assert!(
        metrics.contains("provdb_generated_tokens_total"),
        "{metrics}"
    );
    // Keys are managed by admins while the server runs; a revoked key is refused.
    let listed = walk.expect("GET", "/v1/keys", None, [401, 403, 403, 403, 403, 200]);
    assert!(
        !listed[admin].to_string().contains("secret_hash"),
        "no hash leaves the server"
    );
    let carol_id = listed[admin]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["address"] == CAROL)
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, made) = served.call(
        "POST",
        "/v1/keys",
        walk.keys[admin].as_deref(),
        Some(&json!({"address": "0x6666666666666666666666666666666666666666", "role": "reader"})),
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        served.call("GET", "/v1/me", made["key"].as_str(), None).0,
        200
    );
    assert_eq!(
        served
            .call(
                "POST",
                "/v1/keys",
                walk.keys[alice].as_deref(),
                Some(&json!({"address": ALICE, "role": "admin"}))
            )
            .0,
        403,
        "no one makes themselves admin"
    );
    assert_eq!(
        served
            .call(
                "DELETE",
                &format!("/v1/keys/{carol_id}"),
                walk.keys[admin].as_deref(),
                None
            )
            .0,
        200
    );
    assert_eq!(
        served
            .call("GET", "/v1/me", walk.keys[1].as_deref(), None)
            .0,
        401
    );
    assert_eq!(served.call("GET", "/v1/me", Some("pdb_00_00"), None).0, 401);
}
