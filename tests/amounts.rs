//! Amounts are bounded and checked: a price above the cap is refused when set, an answer
//! priced above it is refused by the embedded API before anything loads or is written, and
//! amounts up to `u128::MAX` stored in the ledger read back exactly through every audit table,
//! sums included.

use provdb::storage::{AnswerId, AnswerRecord, CreditSource, NewAnswer, NewEntry, Role, keccak256};
use provdb::{
    Address, AskRequest, Caller, DEFAULT_MAX_FEE_WEI, Db, Error, PriceScope, QueryLimits,
};

use crate::sql::text_of;

/// An answer by `payer` that pays `amount_wei` to `to`.
fn pay(seed: &str, payer: u8, to: u8, amount_wei: u128) -> NewAnswer {
    NewAnswer {
        record: AnswerRecord {
            answer_id: AnswerId(keccak256(seed.as_bytes())),
            ts_ms: 1,
            caller: Some(Address([payer; 20])),
            datanet_ids: vec![],
            question: "q".into(),
            text: "a".into(),
            model: "test".into(),
            adapter: None,
            fee_wei: amount_wei,
            attribution: "cited".into(),
            training_attribution: None,
            citations: vec![],
            first_seq: 0,
            entries: 0,
        },
        entries: vec![NewEntry {
            datanet_id: None,
            record_id: None,
            chunk_id: None,
            to: Address([to; 20]),
            role: Role::Contributor,
            weight_ppm: 0,
            amount_wei,
        }],
    }
}

fn sql(db: &Db, query: &str) -> String {
    let caller = Caller::admin(Address([0xad; 20]));
    let output = db.sql(query, caller, QueryLimits::default()).unwrap();
    text_of(&output).trim().to_string()
}

#[test]
fn a_price_above_the_cap_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::init(dir.path()).unwrap();
    let datanet = db.create_datanet(provdb::Datanet::new("d")).unwrap();
    let operator = Caller::admin(db.operator().unwrap());
    let scope = PriceScope::Datanet(datanet.id);
    for price in [DEFAULT_MAX_FEE_WEI + 1, 10u128.pow(31), u128::MAX] {
        let refused = db
            .set_price(&operator, scope.clone(), price, 0)
            .unwrap_err();
        assert!(matches!(refused, Error::Invalid(_)), "{refused}");
        assert!(
            refused
                .to_string()
                .contains(&format!("maximum fee of {DEFAULT_MAX_FEE_WEI} wei")),
            "{refused}"
        );
    }
    assert!(db.prices().unwrap().is_empty());
    // The operator's cap: 100 may be set; 101 may not.
    let db = db.with_max_fee_wei(100);
    let over = db.set_price(&operator, scope.clone(), 101, 0).unwrap_err();
    assert!(
        over.to_string().contains("maximum fee of 100 wei"),
        "{over}"
    );
    db.set_price(&operator, scope, 100, 0).unwrap();
    // A caller's cap below the price refuses the ask before any model is needed; an ask within
    // it fails only for want of a model here. Nothing reaches the ledger either way.
    let ask = |max_fee_wei| {
        let request = AskRequest {
            datanets: vec!["d".into()],
            question: "What holds the wing?".into(),
            max_fee_wei,
            ..AskRequest::default()
        };
        db.ask(&request, &mut |_| true).unwrap_err()
    };
    assert!(ask(Some(99)).to_string().contains("no generator model"));
    assert_eq!(db.verify_ledger().unwrap().entries, 0);
    assert_eq!(db.store().ledger_total_wei().unwrap(), 0);
}

#[test]
fn amounts_up_to_u128_max_read_exactly_in_every_audit_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::init(dir.path()).unwrap();
    let store = db.store();
    for payer in [0xa1, 0xa2] {
        let source = CreditSource::Admin {
            by: None,
            reason: "test".into(),
        };
        store
            .credit(Address([payer; 20]), u128::MAX, source, 1)
            .unwrap();
    }
    let big = u128::MAX - 2;
    store
        .append_answers(vec![pay("big", 0xa1, 1, big)])
        .unwrap();
    db.close_epoch().unwrap();
    store
        .append_answers(vec![pay("small", 0xa1, 2, 2)])
        .unwrap();
    db.close_epoch().unwrap();
    // The ledger is full: one more wei would wrap its total.
    let refused = store
        .append_answers(vec![pay("more", 0xa2, 2, 1)])
        .unwrap_err();
    assert!(refused.is_user_error(), "{refused}");

    let max = u128::MAX.to_string();
    assert_eq!(
        sql(
            &db,
            "SELECT amount_wei FROM attributions WHERE role = 'contributor' ORDER BY seq"
        ),
        format!("{big}\n2")
    );
    let payouts = "FROM attributions WHERE role = 'contributor'";
    assert_eq!(sql(&db, &format!("SELECT sum(amount_wei) {payouts}")), max);
    assert_eq!(
        sql(
            &db,
            &format!("SELECT CAST(sum(amount_wei) AS VARCHAR) {payouts}")
        ),
        max
    );
    // Credits of u128::MAX twice sum past it, exactly.
    assert_eq!(
        sql(
            &db,
            "SELECT CAST(sum(amount_wei) AS VARCHAR) FROM attributions WHERE role = 'credit'"
        ),
        // 2 × (2^128 − 1)
        "680564733841876926926749214863536422910"
    );
    assert_eq!(
        sql(&db, "SELECT total_wei FROM epochs ORDER BY epoch"),
        format!("{big}\n{max}")
    );
    assert_eq!(
        sql(
            &db,
            "SELECT sum(cumulative_wei) FROM balances WHERE epoch = 2"
        ),
        max
    );
    assert_eq!(
        sql(
            &db,
            "SELECT count(*) FROM attributions WHERE amount_wei > 1000 AND role = 'contributor'"
        ),
        "1"
    );
    let balances = sql(&db, "SELECT balance_wei FROM accounts ORDER BY account");
    assert_eq!(balances, format!("{}\n{max}", u128::MAX - big - 2));
}
