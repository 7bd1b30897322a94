//! Cited answers with the real models (SmolLM2-135M Q4_1 and all-MiniLM-L6-v2, fetched by
//! scripts/fetch-models.sh): verified citations, exact splits, the ledger and its audit
//! tables, leave-one-out attribution of planted facts, and bad requests.

use std::sync::{Arc, OnceLock};

use provdb::inference::llama::LlamaModel;
use provdb::inference::model_files;
use provdb::storage::{LedgerPolicy, Role};
use provdb::{
    Address, Answer, AskRequest, Attribution, Caller, Datanet, Db, IngestOptions, PriceScope,
    QueryLimits, SearchMode, SearchOptions, SentenceEmbedder, Visibility,
};
use serde_json::json;

use crate::common::{ALICE_KEY, BOB_KEY, address, write_rows};
use crate::sql::text_of;

const CURATOR: Address = Address([0xc0; 20]);
const CANARY: Address = Address([0xca; 20]);
const MODEL_OWNER: Address = Address([0xbb; 20]);
const PROTOCOL: Address = Address([0xaa; 20]);
/// Who asks the fixture's questions, credited [`ASKER_CREDIT`].
const ASKER: Address = Address([0xa5; 20]);
const ASKER_CREDIT: u128 = 10 * ETH;
const ETH: u128 = 1_000_000_000_000_000_000;
/// The fixture's prices: the model 0.1 ETH per answer, the Datanet 0.9 ETH.
const MODEL_PRICE: u128 = ETH / 10;
const DATANET_PRICE: u128 = 9 * ETH / 10;
const MODEL: &str = "smollm2-135m-q4_1";

fn models() -> (Arc<LlamaModel>, Arc<SentenceEmbedder>) {
    static MODELS: OnceLock<(Arc<LlamaModel>, Arc<SentenceEmbedder>)> = OnceLock::new();
    MODELS
        .get_or_init(|| {
            let generator = LlamaModel::load(&model_files::default_generator_path())
                .expect("SmolLM2: run scripts/fetch-models.sh");
            let embedder = SentenceEmbedder::load(&model_files::default_embedder_dir())
                .expect("MiniLM: run scripts/fetch-models.sh");
            (generator, Arc::new(embedder))
        })
        .clone()
}

/// Real facts by alice and bob, invented facts by the canary, in a Datanet the curator owns.
fn fixture(dir: &std::path::Path) -> Db {
    let (generator, embedder) = models();
    let db = Db::init(dir.join("data"))
        .unwrap()
        .with_embedder(embedder)
        .with_generator(generator, MODEL);
    let mut aero = Datanet::new("aero");
    aero.owner = Some(CURATOR);
    db.create_datanet(aero).unwrap();
    let (alice, bob) = (address(&ALICE_KEY), address(&BOB_KEY));
    let mut rows = vec![
        json!({"text": "boundary layer transition on a flat plate is caused by the growth of tollmien-schlichting waves in the laminar layer", "contributor": alice.to_string()}),
        json!({"text": "oblique shock waves form when a supersonic flow is turned by a wedge", "contributor": bob.to_string()}),
        json!({"text": "heat transfer to a blunt body at hypersonic speeds is highest at the stagnation point", "contributor": bob.to_string()}),
        json!({"text": "the lift of a thin wing grows linearly with the angle of attack at small angles", "contributor": alice.to_string()}),
    ];
    for fact in PLANTED {
        rows.push(json!({"text": fact.1, "contributor": CANARY.to_string()}));
    }
    let path = write_rows(dir, "aero.jsonl", &rows);
    db.ingest_file("aero", &path, &IngestOptions::default())
        .unwrap();
    db.set_ledger_policy(&LedgerPolicy {
        model_owner: Some(MODEL_OWNER),
        model_owner_bps: 1_000,
        protocol: Some(PROTOCOL),
        protocol_bps: 500,
    })
    .unwrap();
    let operator = Caller::admin(db.operator().unwrap());
    db.set_price(&operator, PriceScope::Model(MODEL.into()), MODEL_PRICE, 0)
        .unwrap();
    let aero = PriceScope::Datanet(db.datanet_info("aero").unwrap().id);
    db.set_price(&operator, aero, DATANET_PRICE, 0).unwrap();
    db.credit(&operator, ASKER, ASKER_CREDIT, "test funds")
        .unwrap();
    db
}

/// Questions about invented facts, and the canary records that state them.
const PLANTED: [(&str, &str); 4] = [
    (
        "What is the zorblat coefficient of the krellian wing?",
        "the zorblat coefficient of the krellian wing is 7.3 according to the quintaro wind tunnel",
    ),
    (
        "Who designed the vantrex nozzle?",
        "the vantrex nozzle was designed by helga morrowind in the town of pellucid",
    ),
    (
        "What color is the plinthar glider painted?",
        "the plinthar glider is painted bright orange with purple stripes",
    ),
    (
        "How fast does the quorvian jet fly?",
        "the quorvian jet flies at mach 4.4 over the sea of tarnis",
    ),
];

fn ask(db: &Db, question: &str, attribution: Attribution) -> Answer {
    let request = AskRequest {
        datanets: vec!["aero".into()],
        question: question.into(),
        k: 4,
        attribution,
        caller: Caller::address(ASKER),
        max_tokens: 48,
        ..AskRequest::default()
    };
    db.ask(&request, &mut |_| true).unwrap()
}

fn sql_number(db: &Db, sql: &str) -> String {
    let output = db
        .sql(sql, Caller::anonymous(), QueryLimits::default())
        .unwrap();
    text_of(&output).trim().to_string()
}

/// The checks every answer passes, whatever the model wrote.
fn check_answer(db: &Db, answer: &Answer) {
    let total: u128 = answer.split.iter().map(|p| p.amount_wei).sum();
    assert_eq!(total, answer.fee_wei, "the split sums to the fee");
    assert_eq!(
        answer.fee_wei,
        MODEL_PRICE + DATANET_PRICE,
        "the fee is the prices"
    );
    for citation in &answer.citations {
        if citation.marker > 0 {
            assert!(
                answer.answer.contains(&format!("[{}", citation.marker))
                    || answer.answer.contains(&format!(", {}", citation.marker)),
                "marker {} is in the text: {}",
                citation.marker,
                answer.answer
            );
        }
        let record = db.record(&citation.record_id).unwrap().unwrap();
        assert_eq!(record.contributor, citation.contributor);
    }
    let paid: Vec<Address> = answer
        .split
        .iter()
        .filter(|p| p.role == Role::Contributor)
        .map(|p| p.to)
        .collect();
    for who in &paid {
        assert!(
            answer.citations.iter().any(|c| c.contributor == *who),
            "only cited or measured sources are paid"
        );
    }
    if answer.attribution == Attribution::Cited {
        check_cited(answer, &paid);
    }
    if paid.is_empty() {
        let treasury: Vec<_> = answer
            .split
            .iter()
            .filter(|p| p.role == Role::Treasury)
            .collect();
        assert_eq!(treasury.len(), 1);
        assert_eq!(treasury[0].to, CURATOR);
        assert_eq!(treasury[0].amount_wei, 850_000_000_000_000_000);
    }
    let stored = db.store().answer(&answer.answer_id).unwrap().unwrap();
    assert_eq!(stored.entries as usize, answer.split.len());
}

/// Under `cited`, only sources cited by a verified marker are paid: a source retrieved but not
/// cited (the canary's, say) is never paid, whatever else the answer cites.
fn check_cited(answer: &Answer, paid: &[Address]) {
    let cited: Vec<Address> = answer
        .citations
        .iter()
        .filter(|c| c.marker > 0)
        .map(|c| c.contributor)
        .collect();
    let canary_wei: u128 = answer
        .split
        .iter()
        .filter(|p| p.to == CANARY)
        .map(|p| p.amount_wei)
        .sum();
    assert_eq!(
        canary_wei > 0,
        cited.contains(&CANARY),
        "the canary is paid {canary_wei} wei; cited: {:?}; answer: {}",
        answer.citations,
        answer.answer
    );
    assert!(
        answer.citations.iter().all(|c| c.marker > 0),
        "cited attribution measures no uncited source: {:?}",
        answer.citations
    );
    for who in paid {
        assert!(cited.contains(who), "{who} is paid but cites nothing");
    }
}

#[test]
fn answers_pay_by_citation_or_measured_use_and_the_ledger_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let cited = ask(
        &db,
        "What causes boundary layer transition on a flat plate?",
        Attribution::Cited,
    );
    check_answer(&db, &cited);
    assert!(!cited.answer.is_empty());
    let loo = ask(&db, PLANTED[0].0, Attribution::Loo);
    check_answer(&db, &loo);
    assert!(loo.usage.attribution_ms > 0.0);
    // The ledger verifies: the credit, then each answer's charge and payouts; the payouts
    // add up to the two fees, and so do the charges.
    let check = db.verify_ledger().unwrap();
    assert!(check.broken.is_none(), "{check:?}");
    assert_eq!(
        check.entries as usize,
        1 + (1 + cited.split.len()) + (1 + loo.split.len())
    );
    assert_eq!(
        sql_number(
            &db,
            "SELECT sum(amount_wei) FROM attributions WHERE role <> 'charge'"
        ),
        (2 * ETH).to_string()
    );
    assert_eq!(
        sql_number(
            &db,
            "SELECT sum(amount_wei) FROM attributions WHERE role = 'charge'"
        ),
        (2 * ETH).to_string()
    );
    let (account, held) = db.account(&ASKER).unwrap();
    assert_eq!((account.balance_wei, held), (ASKER_CREDIT - 2 * ETH, 0));
    let by_account = db
        .sql(
            "SELECT contributor, sum(amount_wei) FROM attributions GROUP BY contributor ORDER BY 2 DESC",
            Caller::anonymous(),
            QueryLimits::default(),
        )
        .unwrap();
    assert!(by_account.rows() >= 3);
    assert_eq!(
        sql_number(&db, "SELECT count(*) FROM citations"),
        (cited.citations.len() + loo.citations.len()).to_string()
    );
    // An epoch closes over both answers: the model owner has its price less the protocol's
    // 5%, twice, and the epoch owes exactly what was charged.
    let epoch = db.store().close_epoch(0).unwrap();
    assert_eq!(epoch.end_seq, check.entries + 1);
    assert_eq!(epoch.total_wei, 2 * ETH);
    assert_eq!(
        sql_number(
            &db,
            "SELECT cumulative_wei FROM balances WHERE account = '0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'"
        ),
        (2 * MODEL_PRICE * 95 / 100).to_string()
    );
}

#[test]
fn leave_one_out_pays_the_canary_for_its_planted_facts() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let mut canary_first = 0;
    for (question, _) in PLANTED {
        let answer = ask(&db, question, Attribution::Loo);
        check_answer(&db, &answer);
        let mut shares: Vec<(Address, u128)> = Vec::new();
        for p in answer.split.iter().filter(|p| p.role == Role::Contributor) {
            match shares.iter_mut().find(|(a, _)| *a == p.to) {
                Some(share) => share.1 += p.amount_wei,
                None => shares.push((p.to, p.amount_wei)),
            }
        }
        shares.sort_by_key(|share| std::cmp::Reverse(share.1));
        eprintln!("{question} -> {:?} | {}", shares.first(), answer.answer);
        if shares.first().is_some_and(|(a, _)| *a == CANARY) {
            canary_first += 1;
        }
    }
    // Measured here: 4 of 4 (SmolLM2-135M Q4_1, k = 4); the threshold sits just under.
    eprintln!("canary first on {canary_first} of {}", PLANTED.len());
    assert!(canary_first >= 3, "canary first on {canary_first} of 4");
    // With `cited`, the canary is paid only when cited (`check_cited`, run on every answer).
    // That check must meet the canary retrieved and left uncited while another source is
    // cited, or it proves nothing.
    let options = SearchOptions {
        k: 4,
        mode: SearchMode::Hybrid,
        ..SearchOptions::default()
    };
    let mut uncited_beside_others = 0;
    for question in CITED_QUESTIONS {
        let answer = ask(&db, question, Attribution::Cited);
        check_answer(&db, &answer);
        let retrieved = db.search("aero", question, &options).unwrap();
        let canary_retrieved = retrieved.iter().any(|h| h.contributor == CANARY);
        let canary_cited = answer
            .citations
            .iter()
            .any(|c| c.marker > 0 && c.contributor == CANARY);
        eprintln!(
            "{question} -> canary retrieved {canary_retrieved}, cited {canary_cited}, {} citations | {}",
            answer.citations.len(),
            answer.answer
        );
        if canary_retrieved && !canary_cited && answer.citations.iter().any(|c| c.marker > 0) {
            uncited_beside_others += 1;
        }
    }
    // Measured here: 1 of 3 (the second question).
    assert!(
        uncited_beside_others > 0,
        "no cited answer left a retrieved canary source uncited beside another citation"
    );
}

/// Questions answered with `cited` attribution while the canary's sources are retrieved: one
/// cites nothing, one cites another source, one cites the canary.
const CITED_QUESTIONS: [&str; 3] = [
    PLANTED[1].0,
    "How does the lift of a thin wing grow with the angle of attack, and what is the zorblat \
     coefficient of the krellian wing?",
    PLANTED[0].0,
];

#[test]
fn bad_questions_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let mut secret = Datanet::new("secret");
    secret.visibility = Visibility::Private;
    secret.owner = Some(address(&ALICE_KEY));
    db.create_datanet(secret).unwrap();
    let base = AskRequest {
        datanets: vec!["aero".into()],
        question: "What is lift?".into(),
        ..AskRequest::default()
    };
    let bad = [
        AskRequest {
            question: "  ".into(),
            ..base.clone()
        },
        AskRequest {
            question: "x".repeat(5000),
            ..base.clone()
        },
        AskRequest {
            k: 0,
            ..base.clone()
        },
        AskRequest {
            adapters: vec!["some-adapter".into()],
            ..base.clone()
        },
        AskRequest {
            datanets: vec!["nothing".into()],
            ..base.clone()
        },
        AskRequest {
            datanets: vec!["secret".into()],
            ..base.clone()
        },
        AskRequest {
            mode: SearchMode::Bm25,
            max_tokens: 0,
            ..base.clone()
        },
    ];
    for request in bad {
        let error = db.ask(&request, &mut |_| true).unwrap_err();
        assert!(error.is_user_error(), "{error}");
        assert!(
            !error.to_string().contains("private"),
            "a private Datanet looks unknown: {error}"
        );
    }
    // Only the fixture's credit is in the ledger.
    assert_eq!(db.verify_ledger().unwrap().entries, 1);
    // The owner may ask her private Datanet (free; the model's price is hers to pay).
    let alice = address(&ALICE_KEY);
    let operator = Caller::admin(db.operator().unwrap());
    db.credit(&operator, alice, MODEL_PRICE, "test funds")
        .unwrap();
    let owner = AskRequest {
        datanets: vec!["secret".into()],
        caller: Caller::address(alice),
        max_tokens: 8,
        ..base
    };
    let answer = db.ask(&owner, &mut |_| true).unwrap();
    assert_eq!(answer.fee_wei, MODEL_PRICE);
    assert_eq!(db.account(&alice).unwrap().0.balance_wei, 0);
}

/// Every table and counter an ask may touch, to show a refused ask changed none.
fn money_state(db: &Db) -> Vec<String> {
    let admin = Caller::admin(PROTOCOL);
    let mut state: Vec<String> = [
        "SELECT * FROM attributions ORDER BY seq",
        "SELECT * FROM accounts ORDER BY account",
        "SELECT * FROM citations ORDER BY answer_id",
        "SELECT * FROM epochs",
    ]
    .iter()
    .map(|q| text_of(&db.sql(q, admin, QueryLimits::default()).unwrap()))
    .collect();
    state.push(format!("{:?}", db.verify_ledger().unwrap()));
    state.push(format!("{:?}", db.store().ledger_head().unwrap()));
    state
}

#[test]
fn callers_pay_the_prices_and_a_short_balance_or_low_cap_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let poor = Address([0x99; 20]);
    let operator = Caller::admin(db.operator().unwrap());
    db.credit(&operator, poor, ETH / 2, "half of one answer")
        .unwrap();
    let before = money_state(&db);
    let request = |caller, max_fee_wei| AskRequest {
        datanets: vec!["aero".into()],
        question: "What causes boundary layer transition?".into(),
        caller,
        max_fee_wei,
        max_tokens: 16,
        ..AskRequest::default()
    };
    let mut generated = 0;
    let mut count = |_: &str| {
        generated += 1;
        true
    };
    // A short balance, no account at all, a cap below the price: refused before any work.
    let short = db
        .ask(&request(Caller::address(poor), None), &mut count)
        .unwrap_err();
    assert!(
        matches!(
            short,
            provdb::Error::Storage(provdb::storage::StorageError::InsufficientFunds { .. })
        ),
        "{short}"
    );
    let anonymous = db
        .ask(&request(Caller::anonymous(), None), &mut count)
        .unwrap_err();
    assert!(
        matches!(anonymous, provdb::Error::PaymentRequired(_)),
        "{anonymous}"
    );
    let capped = db
        .ask(&request(Caller::address(ASKER), Some(ETH - 1)), &mut count)
        .unwrap_err();
    assert!(
        matches!(capped, provdb::Error::PaymentRequired(_)),
        "{capped}"
    );
    assert!(
        capped
            .to_string()
            .contains(&format!("costs up to {ETH} wei")),
        "{capped}"
    );
    assert_eq!(
        generated, 0,
        "nothing was generated for a caller who cannot pay"
    );
    assert_eq!(
        money_state(&db),
        before,
        "a refused ask changed the database"
    );
    // A cap at the price passes; the fee is charged exactly.
    let answer = db
        .ask(&request(Caller::address(ASKER), Some(ETH)), &mut |_| true)
        .unwrap();
    assert_eq!(answer.fee_wei, ETH);
    let (account, _) = db.account(&ASKER).unwrap();
    assert_eq!(account.balance_wei, ASKER_CREDIT - ETH);
    assert_eq!((account.charged_wei, account.answers), (ETH, 1));
    // A reader may not set a price, or credit itself; the owner may price its own Datanet.
    let reader = Caller::address(poor);
    let aero = PriceScope::Datanet(db.datanet_info("aero").unwrap().id);
    for refused in [
        db.set_price(&reader, aero.clone(), 1, 0).unwrap_err(),
        db.set_price(&reader, PriceScope::Model(MODEL.into()), 0, 0)
            .unwrap_err(),
        db.credit(&reader, poor, ETH, "free money").unwrap_err(),
        db.refund(&reader, ASKER).unwrap_err(),
    ] {
        assert!(matches!(refused, provdb::Error::Forbidden(_)), "{refused}");
    }
    db.set_price(&Caller::address(CURATOR), aero, 2 * ETH, 0)
        .unwrap();
}

#[test]
fn leave_one_out_from_cached_prefixes_equals_full_recomputation() {
    use provdb::answer::attribution::loo::{Variant, answer_log_probs};
    use provdb::answer::prompt::answer_prompt;
    use provdb::inference::llama::{Llama, Sequence};

    let (model, _) = models();
    let sources = [
        "lift is the force that holds a wing up",
        "drag is the force that opposes motion through air",
        "the zorblat coefficient of the krellian wing is 7.3",
    ];
    let parts = answer_prompt(&model, "What is the zorblat coefficient?", &sources).unwrap();
    let full = parts.tokens(None);
    let mut session = Llama::new(Arc::clone(&model));
    let answer = session.greedy(&full, 12).unwrap();
    let generated = session.sequence();
    let mut cached = vec![Variant {
        prefix: generated.prefix(full.len() - 1),
        rest: vec![*full.last().unwrap()],
    }];
    let mut fresh = vec![Variant {
        prefix: Sequence::new(),
        rest: full.clone(),
    }];
    for index in 0..sources.len() {
        cached.push(Variant {
            prefix: generated.prefix(parts.prefix_len(index)),
            rest: parts.rest_without(index),
        });
        fresh.push(Variant {
            prefix: Sequence::new(),
            rest: parts.tokens(Some(index)),
        });
    }
    let cached = answer_log_probs(&model, cached, &answer).unwrap();
    let fresh = answer_log_probs(&model, fresh, &answer).unwrap();
    for (a, b) in cached.iter().zip(&fresh) {
        assert!(
            (a - b).abs() < 1e-3 * b.abs().max(1.0),
            "{cached:?} vs {fresh:?}"
        );
    }
    // Removing the source that states the fact costs the answer the most.
    let drops: Vec<f64> = cached[1..]
        .iter()
        .map(|without| cached[0] - without)
        .collect();
    assert!(drops[2] > drops[0] && drops[2] > drops[1], "{drops:?}");
}

#[test]
fn cited_answers_through_the_batching_generator_equal_their_own_sessions() {
    use provdb::inference::llama::{Generator, GeneratorOptions};
    let dir = tempfile::tempdir().unwrap();
    let alone = fixture(dir.path());
    let (model, _) = models();
    let generator = Generator::new(model, GeneratorOptions::default()).unwrap();
    let batched = alone.clone().with_batching_generator(Arc::new(generator));
    let questions: Vec<&str> = PLANTED.iter().map(|(q, _)| *q).collect();
    // Four questions at once share the generator's decoding steps.
    let together: Vec<Answer> = std::thread::scope(|scope| {
        let asking: Vec<_> = questions
            .iter()
            .map(|q| scope.spawn(|| ask(&batched, q, Attribution::Cited)))
            .collect();
        asking.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (question, answer) in questions.iter().zip(&together) {
        check_answer(&batched, answer);
        let own = ask(&alone, question, Attribution::Cited);
        assert_eq!(answer.answer, own.answer, "{question}");
        assert_eq!(answer.usage.completion_tokens, own.usage.completion_tokens);
        let ids = |a: &Answer| a.citations.iter().map(|c| c.chunk_id).collect::<Vec<_>>();
        assert_eq!(ids(answer), ids(&own));
        assert_eq!(answer.split, own.split);
    }
}
