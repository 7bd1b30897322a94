//! The money tables: `prices` (every price the session may see: models', readable Datanets',
//! and adapters' for admins; `GET /v1/prices` shows each caller its visible adapters'), `accounts` (prepaid
//! balances: an admin sees every account, anyone else only its own) and `deposits` (on-chain
//! deposits as credited, each once; public, as the chain is, except that a non-admin sees
//! only deposits to its own account).

use std::sync::{Arc, LazyLock};

use arrow_array::RecordBatch;
use arrow_array::builder::{Int64Builder, StringBuilder, UInt64Builder};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use provdb_storage::{Datanet, PriceScope, StorageError, Store, hex32};

use super::ledger::{WEI, finish, wei, wei_builder};
use super::small::{SmallTable, View};
use crate::access::Caller;

static PRICES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("per_answer_wei", WEI, false),
        Field::new("per_1k_tokens_wei", WEI, false),
        Field::new("set_by", DataType::Utf8, true),
        Field::new("sequence", DataType::UInt64, false),
        Field::new("set_at", DataType::Int64, false),
    ]))
});

/// Whether the session sees a price: every model's; a Datanet's it may read; an adapter's only
/// as an admin (adapters of private Datanets are private, and SQL does not know which).
fn sees_price(view: &View, scope: &PriceScope) -> bool {
    match scope {
        PriceScope::Model(_) => true,
        PriceScope::Datanet(id) => view.datanets.iter().any(|d| d.id == *id),
        PriceScope::Adapter(_) => view.caller.is_admin(),
    }
}

fn prices_batch(store: &Store, view: &View) -> Result<RecordBatch, StorageError> {
    let prices: Vec<_> = store
        .prices()?
        .into_iter()
        .filter(|p| sees_price(view, &p.scope))
        .collect();
    let mut kind = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut per_answer = wei_builder(prices.len());
    let mut per_1k = wei_builder(prices.len());
    let mut set_by = StringBuilder::new();
    let mut sequence = UInt64Builder::new();
    let mut set_at = Int64Builder::new();
    for price in &prices {
        kind.append_value(price.scope.kind());
        name.append_value(match &price.scope {
            PriceScope::Model(model) => model.clone(),
            PriceScope::Datanet(id) => store.datanet_by_id(*id)?.name,
            PriceScope::Adapter(id) => hex32(id),
        });
        per_answer.append_value(wei(price.per_answer_wei));
        per_1k.append_value(wei(price.per_1k_tokens_wei));
        set_by.append_option(price.set_by.map(|a| a.to_string()));
        sequence.append_value(price.sequence);
        set_at.append_value(price.set_at_ms);
    }
    finish(
        &PRICES,
        vec![
            Arc::new(kind.finish()),
            Arc::new(name.finish()),
            Arc::new(per_answer.finish()),
            Arc::new(per_1k.finish()),
            Arc::new(set_by.finish()),
            Arc::new(sequence.finish()),
            Arc::new(set_at.finish()),
        ],
    )
}

static ACCOUNTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("account", DataType::Utf8, false),
        Field::new("balance_wei", WEI, false),
        Field::new("credited_wei", WEI, false),
        Field::new("charged_wei", WEI, false),
        Field::new("refunded_wei", WEI, false),
        Field::new("answers", DataType::UInt64, false),
    ]))
});

/// Whether the session's caller sees `account`'s rows: an admin, or the account itself.
fn sees_account(caller: &Caller, account: &provdb_storage::Address) -> bool {
    caller.is_admin() || caller.who().as_ref() == Some(account)
}

fn accounts_batch(store: &Store, view: &View) -> Result<RecordBatch, StorageError> {
    let accounts: Vec<_> = store
        .accounts()?
        .into_iter()
        .filter(|(address, _)| sees_account(&view.caller, address))
        .collect();
    let n = accounts.len();
    let mut account = StringBuilder::new();
    let (mut balance, mut credited) = (wei_builder(n), wei_builder(n));
    let (mut charged, mut refunded) = (wei_builder(n), wei_builder(n));
    let mut answers = UInt64Builder::with_capacity(n);
    for (address, state) in &accounts {
        account.append_value(address.to_string());
        balance.append_value(wei(state.balance_wei));
        credited.append_value(wei(state.credited_wei));
        charged.append_value(wei(state.charged_wei));
        refunded.append_value(wei(state.refunded_wei));
        answers.append_value(state.answers);
    }
    finish(
        &ACCOUNTS,
        vec![
            Arc::new(account.finish()),
            Arc::new(balance.finish()),
            Arc::new(credited.finish()),
            Arc::new(charged.finish()),
            Arc::new(refunded.finish()),
            Arc::new(answers.finish()),
        ],
    )
}

static DEPOSITS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("chain_id", DataType::UInt64, false),
        Field::new("contract", DataType::Utf8, false),
        Field::new("deposit_id", DataType::UInt64, false),
        Field::new("account", DataType::Utf8, false),
        Field::new("amount_wei", WEI, false),
        Field::new("tx_hash", DataType::Utf8, false),
        Field::new("block", DataType::UInt64, false),
        Field::new("ledger_seq", DataType::UInt64, false),
        Field::new("credited_at", DataType::Int64, false),
    ]))
});

fn deposits_batch(store: &Store, view: &View) -> Result<RecordBatch, StorageError> {
    let deposits: Vec<_> = store
        .deposits()?
        .into_iter()
        .filter(|d| sees_account(&view.caller, &d.deposit.account))
        .collect();
    let n = deposits.len();
    let (mut chain_id, mut deposit_id) = (UInt64Builder::new(), UInt64Builder::new());
    let (mut contract, mut account, mut tx) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut amount = wei_builder(n);
    let (mut block, mut seq) = (UInt64Builder::new(), UInt64Builder::new());
    let mut credited_at = Int64Builder::new();
    for credited in &deposits {
        let d = &credited.deposit;
        chain_id.append_value(d.key.chain_id);
        contract.append_value(d.key.contract.to_string());
        deposit_id.append_value(d.key.deposit_id);
        account.append_value(d.account.to_string());
        amount.append_value(wei(d.amount_wei));
        tx.append_value(hex32(&d.tx_hash));
        block.append_value(d.block);
        seq.append_value(credited.ledger_seq);
        credited_at.append_value(credited.credited_at_ms);
    }
    finish(
        &DEPOSITS,
        vec![
            Arc::new(chain_id.finish()),
            Arc::new(contract.finish()),
            Arc::new(deposit_id.finish()),
            Arc::new(account.finish()),
            Arc::new(amount.finish()),
            Arc::new(tx.finish()),
            Arc::new(block.finish()),
            Arc::new(seq.finish()),
            Arc::new(credited_at.finish()),
        ],
    )
}

/// The money tables of one session.
pub(crate) fn money_tables(
    store: &Arc<Store>,
    readable: &Arc<Vec<Datanet>>,
    caller: Caller,
) -> [(&'static str, SmallTable); 3] {
    let view = View {
        datanets: Arc::clone(readable),
        caller,
    };
    let table = |name, schema: &LazyLock<SchemaRef>, compute| {
        let table = SmallTable::new(name, Arc::clone(schema), store, view.clone(), compute);
        (name, table)
    };
    [
        table("prices", &PRICES, prices_batch),
        table("accounts", &ACCOUNTS, accounts_batch),
        table("deposits", &DEPOSITS, deposits_batch),
    ]
}
