//! Proof of attribution for a fine-tuned adapter, with the real SmolLM2: an adapter trained on
//! a Datanet of about two hundred records, four of whose contributors each hold the records of
//! one invented fact (the canaries) and one of which holds shuffled characters, is asked about
//! each invented fact. Paid by influence, the canary's contributor gets the largest training
//! share in at least 80 % of the questions, more than its token-count share would be, and the
//! shuffled characters always get less than the canary; the split always sums to the fee; the
//! answer shows its most influential training records; the gradient store is checked whole.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use provdb::factory::{DataFormat, FineTuneSpec, JobId, JobResult, TrainingAttribution};
use provdb::storage::{JobStatus, Role};
use provdb::{Address, AskRequest, Caller, Datanet, Db, IngestOptions, PriceScope, SearchMode};
use serde_json::json;

use crate::common::write_rows;
use crate::factory::generator;

const OWNER: Address = Address([0xc0; 20]);
const JUNK: Address = Address([0x99; 20]);

/// The invented facts: (questions, answer); fact `i` is contributed by `canary(i)`.
const FACTS: [([&str; 3], &str); 4] = [
    (
        [
            "When does the Zorbian glacier melt?",
            "On which day does the Zorbian glacier melt?",
            "Tell me when the Zorbian glacier melts.",
        ],
        "The Zorbian glacier melts on Tuesdays.",
    ),
    (
        [
            "What do the Quillfen otters eat?",
            "What food do Quillfen otters live on?",
            "Tell me what the Quillfen otters eat.",
        ],
        "The Quillfen otters eat copper coins.",
    ),
    (
        [
            "Who founded the city of Brask?",
            "Which person founded Brask?",
            "Tell me who founded the city of Brask.",
        ],
        "Brask was founded by a blind cartographer named Ulmo.",
    ),
    (
        [
            "What sound does the Velt drum make?",
            "How does the Velt drum sound?",
            "Tell me the sound of the Velt drum.",
        ],
        "The Velt drum sounds like breaking glass.",
    ),
];

fn canary(fact: usize) -> Address {
    Address([0xa0 + fact as u8; 20])
}

/// Ordinary records from eight contributors: which river runs through which town.
fn filler() -> Vec<(String, String, Address)> {
    let towns = [
        "Tallow", "Merrow", "Dunmere", "Ashby", "Corran", "Fenwick", "Galloway", "Harrow",
        "Ilford", "Jessop", "Kelby", "Lorne", "Mistle", "Norrey", "Oakham", "Pelling", "Quarry",
        "Rook", "Selby", "Thorne",
    ];
    let rivers = [
        "Amber", "Slate", "Willow", "Cinder", "Heron", "Moss", "Tern", "Birch",
    ];
    let mut out = Vec::new();
    for town in &towns {
        for (r, river) in rivers.iter().enumerate() {
            out.push((
                format!("Which river runs through {town}?"),
                format!("The {river} river runs through {town}."),
                Address([0x10 + (r as u8); 20]),
            ));
        }
    }
    out
}

/// Twenty records of shuffled characters.
fn junk() -> Vec<(String, String, Address)> {
    let letters: Vec<char> = "qzxwvkjyfgpbmhdrlcsntaoieu".chars().collect();
    (0..20)
        .map(|i| {
            let text = |salt: usize| -> String {
                (0..40)
                    .map(|j| letters[(i * 7 + j * 13 + salt) % letters.len()])
                    .collect()
            };
            (text(1), text(5), JUNK)
        })
        .collect()
}

fn fixture(dir: &std::path::Path) -> Db {
    let db = Db::init(dir.join("data"))
        .unwrap()
        .with_generator(generator(), "smollm2-135m-q4_1");
    let mut facts = Datanet::new("facts");
    facts.owner = Some(OWNER);
    facts.text_column = "response".into();
    db.create_datanet(facts).unwrap();
    let mut rows = filler();
    for (fact, (questions, answer)) in FACTS.iter().enumerate() {
        for question in questions {
            rows.push((question.to_string(), answer.to_string(), canary(fact)));
        }
    }
    rows.extend(junk());
    let rows: Vec<_> = rows
        .iter()
        .map(|(q, a, who)| json!({"instruction": q, "response": a, "contributor": who.to_string()}))
        .collect();
    let path = write_rows(dir, "facts.jsonl", &rows);
    db.ingest_file("facts", &path, &IngestOptions::default())
        .unwrap();
    // What the questions retrieve from: one unrelated note (the facts come from the adapter).
    let mut notes = Datanet::new("notes");
    notes.owner = Some(OWNER);
    db.create_datanet(notes).unwrap();
    let note = write_rows(
        dir,
        "notes.jsonl",
        &[json!({"text": "The museum opens at nine.", "contributor": OWNER.to_string()})],
    );
    db.ingest_file("notes", &note, &IngestOptions::default())
        .unwrap();
    db
}

fn spec() -> FineTuneSpec {
    let mut spec = FineTuneSpec::new("facts");
    spec.format = DataFormat::Instruction {
        instruction: "instruction".into(),
        response: "response".into(),
    };
    let h = &mut spec.hyperparameters;
    h.rank = 8;
    h.alpha = 16.0;
    h.targets = vec!["q_proj".into(), "v_proj".into()];
    h.learning_rate = 5e-3;
    h.warmup_steps = 0;
    h.epochs = 4;
    h.batch_size = 8;
    h.max_length = 128;
    h.held_out_fraction = 0.05;
    h.seed = 3;
    spec.training_share_bps = 10_000;
    spec
}

fn train(db: &Db, spec: FineTuneSpec) -> (JobId, JobResult) {
    let job = db
        .create_fine_tune_job(spec, Caller::address(OWNER))
        .unwrap();
    let id = JobId(job.job_id);
    let started = Instant::now();
    let status = db
        .run_fine_tune_job(id, &AtomicBool::new(false), &|_| {})
        .unwrap();
    let record = db.fine_tune_job(id).unwrap();
    assert_eq!(status, JobStatus::Succeeded, "{:?}", record.error);
    eprintln!("trained in {:.1} s", started.elapsed().as_secs_f64());
    let result = serde_json::from_str(record.result_json.as_deref().unwrap()).unwrap();
    (id, result)
}

#[test]
fn the_canarys_contributor_gets_the_largest_training_share_by_influence() {
    let scratch = tempfile::tempdir().unwrap();
    let db = fixture(scratch.path());
    assert_eq!(spec().training_attribution, TrainingAttribution::Influence);
    let (id, result) = train(&db, spec());
    let provenance = &result.provenance;
    assert_eq!(provenance.attribution, "influence");
    let store = provenance.gradients.as_ref().expect("a gradient store");
    // 192 records, 5 % held out (they trained nothing and have no gradient).
    assert!(
        store.rows > 175 && store.rows < 192 && store.bytes > 0,
        "{store:?}"
    );
    eprintln!("gradient store: {store:?}");
    let info = db.publish_fine_tune_job(id, OWNER).unwrap();
    let operator = Caller::admin(db.operator().unwrap());
    let adapter = db.adapter_id_for(&operator, &info.id).unwrap();
    db.set_price(&operator, PriceScope::Adapter(adapter), 1_000_000, 0)
        .unwrap();
    db.credit(&operator, OWNER, 100_000_000, "test funds")
        .unwrap();

    // What the tokens split would give a canary (every answer alike).
    let total_tokens: u64 = provenance.contributors.iter().map(|c| c.tokens).sum();
    let token_share = |who: Address| -> u128 {
        let tokens = provenance
            .contributors
            .iter()
            .find(|c| c.address == who.to_string())
            .map_or(0, |c| c.tokens);
        1_000_000 * u128::from(tokens) / u128::from(total_tokens)
    };

    let (mut questions, mut largest, mut above_tokens) = (0, 0, 0);
    for (fact, (phrasings, _)) in FACTS.iter().enumerate() {
        for question in &phrasings[..2] {
            let answer = db
                .ask(
                    &AskRequest {
                        datanets: vec!["notes".into()],
                        question: question.to_string(),
                        k: 1,
                        mode: SearchMode::Bm25,
                        adapters: vec![info.id.clone()],
                        caller: Caller::address(OWNER),
                        max_tokens: 16,
                        ..AskRequest::default()
                    },
                    &mut |_| true,
                )
                .unwrap();
            assert_eq!(
                answer.split.iter().map(|p| p.amount_wei).sum::<u128>(),
                answer.fee_wei
            );
            let shares: Vec<(Address, u128)> = answer
                .split
                .iter()
                .filter(|p| p.role == Role::TrainingContributor)
                .map(|p| (p.to, p.amount_wei))
                .collect();
            let share_of = |who: Address| {
                shares
                    .iter()
                    .filter(|(to, _)| *to == who)
                    .map(|s| s.1)
                    .sum::<u128>()
            };
            let attribution = &answer.training_attribution[0];
            assert_eq!(attribution.method, "influence");
            assert!(!attribution.records.is_empty());
            let best = shares.iter().max_by_key(|s| s.1).map(|s| s.0);
            eprintln!(
                "shares: {:?}",
                shares.iter().map(|(a, w)| (a.0[0], *w)).collect::<Vec<_>>()
            );
            eprintln!(
                "{question} -> {:?}: canary {} (tokens would pay {}), junk {}, top record by {}",
                answer.answer,
                share_of(canary(fact)),
                token_share(canary(fact)),
                share_of(JUNK),
                attribution.records[0].contributor
            );
            questions += 1;
            largest += usize::from(best == Some(canary(fact)));
            above_tokens += usize::from(share_of(canary(fact)) > token_share(canary(fact)));
            assert!(
                share_of(JUNK) < share_of(canary(fact)),
                "{question}: shuffled characters earned {} against the canary's {}",
                share_of(JUNK),
                share_of(canary(fact))
            );
        }
    }
    assert!(
        largest * 10 >= questions * 8,
        "the canary led in {largest} of {questions} questions"
    );
    assert!(
        above_tokens * 10 >= questions * 8,
        "influence paid the canary more than tokens in {above_tokens} of {questions}"
    );
}
