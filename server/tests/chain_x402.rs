//! x402 payments settled on a real anvil: the EIP-3009 test token
//! (`chain/contracts/test/TestToken3009.sol`) deployed with cast, the distributor deployed for it
//! (`provdb chain deploy --token`), a payer without ETH signing `TransferWithAuthorization`s to
//! the distributor (with `cast wallet sign --data`, a signer provdb did not write), and a
//! facilitator's key settling them through `provdb_chain::settle_authorization`. Checked from
//! outside with cast: the `Deposited` events, the token balances and the distributor's
//! counters; and in the store: each deposit credited once, to its signer.
//!
//! The attacks: a replayed payload, an expired or not yet valid one, a signature by another key,
//! an authorization paying someone else, a facilitator raising the value or naming itself as
//! payer, a third party submitting the authorization straight to the token (the next sync
//! credits it to the payer), anyone but the operator crediting a plain transfer, or crediting
//! one twice or beyond what the distributor holds. Each gains its author nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use provdb::Address;
use provdb_chain::{
    ChainError, RetryPolicy, TokenDomain, TransferAuthorization, authorization_used,
    recover_authorizer, settle_authorization, sign_authorization, token_domain,
};

use crate::anvil::*;
use crate::common::*;
use crate::ledger_check::{payment, synthetic_answer};
use crate::x402_fixture::deploy_token;

/// The test token's name and EIP-712 version.
const TOKEN_NAME: &str = "provdb test dollar";
/// A payer that never holds ETH: it only signs.
const PAYER_KEY: &str = "0x4242424242424242424242424242424242424242424242424242424242424242";
/// One x402 price: 0.01 of a 6-decimal dollar.
const PRICE: u128 = 10_000;

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `auth` signed in `domain` by `key`, with `cast wallet sign --data` (EIP-712 JSON).
fn cast_sign(
    anvil: &Anvil,
    domain: &TokenDomain,
    auth: &TransferAuthorization,
    key: &str,
) -> Vec<u8> {
    let typed = serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"},
                {"name": "nonce", "type": "bytes32"},
            ],
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id.to_string(),
            "verifyingContract": domain.token.to_string(),
        },
        "message": {
            "from": auth.from.to_string(),
            "to": auth.to.to_string(),
            "value": auth.value.to_string(),
            "validAfter": auth.valid_after.to_string(),
            "validBefore": auth.valid_before.to_string(),
            "nonce": format!("0x{}", hex::encode(auth.nonce)),
        },
    });
    let signature = anvil.cast_offline(&[
        "wallet",
        "sign",
        "--private-key",
        key,
        "--data",
        &typed.to_string(),
    ]);
    hex::decode(signature.trim_start_matches("0x")).unwrap()
}

/// A token in ERC-20 mode with its distributor, a payer holding `minted` tokens and no ETH,
/// and a facilitator (anvil's account 4) that pays the gas.
struct Setup {
    anvil: Anvil,
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    token: String,
    distributor: String,
    payer: Address,
    facilitator_key: String,
    domain: TokenDomain,
}

impl Setup {
    fn new(minted: u128) -> Self {
        let anvil = Anvil::start();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("db");
        ok(provdb(&data, &["init"]));
        let token = deploy_token(&anvil, TOKEN_NAME, "1");
        let deployed = deploy_for_token(&data, &anvil, &token);
        let distributor = deployed["distributor"].as_str().unwrap().to_string();
        let payer =
            address(&anvil.cast_offline(&["wallet", "address", "--private-key", PAYER_KEY]));
        ok(anvil.cast(&[
            "send",
            &token,
            "mint(address,uint256)",
            &payer.to_string(),
            &minted.to_string(),
            "--private-key",
            &anvil.keys[0],
        ]));
        let domain = runtime()
            .block_on(token_domain(&data, None, RetryPolicy::default()))
            .unwrap();
        let facilitator_key = anvil.keys[4].clone();
        Self {
            anvil,
            _dir: dir,
            data,
            token,
            distributor,
            payer,
            facilitator_key,
            domain,
        }
    }

    /// An authorization of `value` from the payer to the distributor, valid for an hour.
    fn authorization(&self, value: u128, nonce: u8) -> TransferAuthorization {
        TransferAuthorization {
            from: self.payer,
            to: address(&self.distributor),
            value,
            valid_after: 0,
            valid_before: now_s() + 3_600,
            nonce: [nonce; 32],
        }
    }

    fn settle(
        &self,
        auth: &TransferAuthorization,
        signature: &[u8],
        retry: RetryPolicy,
        confirmations: u64,
    ) -> provdb_chain::Result<provdb_chain::SettledAuthorization> {
        let store = open_store(&self.data);
        runtime().block_on(settle_authorization(
            &store,
            &self.data,
            &self.facilitator_key,
            None,
            retry,
            auth,
            signature,
            confirmations,
        ))
    }

    /// Settling `auth` signed `signature` fails, naming `reason`; nothing is sent (the
    /// facilitator's nonce does not move) and nothing is credited.
    fn refused(&self, auth: &TransferAuthorization, signature: &[u8], reason: &str) {
        let facilitator = self.anvil.accounts[4].clone();
        let nonce_before = self.anvil.cast_ok(&["nonce", &facilitator]);
        let credited_before = open_store(&self.data).deposits().unwrap().len();
        let err = self
            .settle(auth, signature, RetryPolicy::default(), 1)
            .unwrap_err();
        assert!(err.to_string().contains(reason), "{reason}: {err}");
        if reason.contains("distributor") {
            assert!(matches!(err, ChainError::Invalid(_)), "{err:?}");
        } else {
            assert!(matches!(err, ChainError::Reverted { .. }), "{err:?}");
        }
        assert_eq!(
            self.anvil.cast_ok(&["nonce", &facilitator]),
            nonce_before,
            "nothing was sent"
        );
        assert_eq!(
            open_store(&self.data).deposits().unwrap().len(),
            credited_before,
            "nothing was credited"
        );
    }

    fn balance(&self, account: &str) -> u128 {
        token_balance(&self.anvil, &self.token, account)
    }

    fn credited(&self, account: Address) -> u128 {
        open_store(&self.data)
            .account(&account)
            .unwrap()
            .credited_wei
    }
}

#[test]
fn an_authorization_settles_as_a_deposit_for_its_signer_once() {
    let minted = 1_000_000;
    let s = Setup::new(minted);
    let anvil = &s.anvil;
    assert_eq!(
        s.domain,
        TokenDomain {
            name: TOKEN_NAME.into(),
            version: "1".into(),
            chain_id: 31337,
            token: address(&s.token),
        }
    );
    assert_eq!(
        anvil.balance(&s.payer.to_string()),
        0,
        "the payer has no ETH"
    );

    // The payer signs with Foundry; provdb recovers the same signer and signs the same bytes.
    let auth = s.authorization(PRICE, 0x01);
    let signature = cast_sign(anvil, &s.domain, &auth, PAYER_KEY);
    assert_eq!(
        recover_authorizer(&s.domain, &auth, &signature).unwrap(),
        s.payer
    );
    assert_eq!(
        sign_authorization(&s.domain, &auth, PAYER_KEY)
            .unwrap()
            .as_slice(),
        signature.as_slice()
    );
    let used = |auth: &TransferAuthorization| {
        runtime()
            .block_on(authorization_used(
                &s.data,
                None,
                RetryPolicy::default(),
                auth.from,
                auth.nonce,
            ))
            .unwrap()
    };
    assert!(!used(&auth));

    let settled = s
        .settle(&auth, &signature, RetryPolicy::default(), 1)
        .unwrap();
    assert_eq!(settled.deposit_id, 0);
    assert_eq!(settled.payer, s.payer);
    assert_eq!(settled.amount_wei, PRICE);
    assert!(settled.credited);
    assert!(used(&auth));
    eprintln!("depositWithAuthorization used {} gas", settled.gas_used);
    assert!(settled.gas_used < 120_000, "{} gas", settled.gas_used);
    let receipt = json(&ok(anvil.cast(&["receipt", &settled.tx, "--json"])));
    assert_eq!(
        u64::from_str_radix(
            receipt["blockNumber"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16
        )
        .unwrap(),
        settled.block
    );
    assert_eq!(
        receipt["from"].as_str().unwrap().to_lowercase(),
        anvil.accounts[4].to_lowercase(),
        "the facilitator sent it"
    );

    // Read from outside: the deposit names the signer, as account and as payer.
    let on_chain = chain_deposits(anvil, &s.distributor);
    assert_eq!(on_chain.len(), 1);
    assert_eq!(
        on_chain[0].account.to_lowercase(),
        s.payer.to_string().to_lowercase()
    );
    assert_eq!(
        on_chain[0].from.to_lowercase(),
        s.payer.to_string().to_lowercase()
    );
    assert_eq!(on_chain[0].amount, PRICE);
    assert_eq!(s.balance(&s.distributor), PRICE);
    assert_eq!(s.balance(&s.payer.to_string()), minted - PRICE);
    assert_eq!(s.credited(s.payer), PRICE);

    // Replayed: the token has spent the nonce.
    s.refused(&auth, &signature, "AuthorizationAlreadyUsed");
    assert_eq!(s.credited(s.payer), PRICE);

    // Out of its time window either way.
    let expired = TransferAuthorization {
        valid_before: now_s() - 10,
        ..s.authorization(PRICE, 0x02)
    };
    s.refused(
        &expired,
        &cast_sign(anvil, &s.domain, &expired, PAYER_KEY),
        "AuthorizationExpired",
    );
    let early = TransferAuthorization {
        valid_after: now_s() + 3_000,
        ..s.authorization(PRICE, 0x03)
    };
    s.refused(
        &early,
        &cast_sign(anvil, &s.domain, &early, PAYER_KEY),
        "AuthorizationNotYetValid",
    );

    // Signed by someone else: recovered as that key, refused by the token.
    let forged = s.authorization(PRICE, 0x04);
    let other_signature = cast_sign(anvil, &s.domain, &forged, &anvil.keys[5]);
    assert_eq!(
        recover_authorizer(&s.domain, &forged, &other_signature).unwrap(),
        address(&anvil.accounts[5])
    );
    s.refused(&forged, &other_signature, "InvalidSignature");

    // More than the payer holds.
    let too_much = s.authorization(minted, 0x05);
    s.refused(
        &too_much,
        &cast_sign(anvil, &s.domain, &too_much, PAYER_KEY),
        "ERC20InsufficientBalance",
    );

    // Paying someone else is no deposit: refused before sending, and the contract, which puts
    // itself in as payee, refuses it too; the named payee receives nothing.
    let elsewhere = TransferAuthorization {
        to: address(&anvil.accounts[1]),
        ..s.authorization(PRICE, 0x06)
    };
    let elsewhere_signature = cast_sign(anvil, &s.domain, &elsewhere, PAYER_KEY);
    s.refused(&elsewhere, &elsewhere_signature, "not the distributor");
    let direct = submit_to_distributor(&s, &elsewhere, &elsewhere_signature, elsewhere.value);
    assert!(
        direct.contains(&anvil.selector("InvalidSignature()")),
        "{direct}"
    );
    assert_eq!(s.balance(&anvil.accounts[1]), 0);

    // The facilitator raises the value, or names itself as the payer: the signature no longer
    // covers it. The genuine authorization then settles for exactly its value, to its signer.
    let genuine = s.authorization(PRICE, 0x07);
    let genuine_signature = cast_sign(anvil, &s.domain, &genuine, PAYER_KEY);
    let raised = TransferAuthorization {
        value: PRICE * 50,
        ..genuine.clone()
    };
    s.refused(&raised, &genuine_signature, "InvalidSignature");
    let facilitator = address(&anvil.accounts[4]);
    let hijacked = TransferAuthorization {
        from: facilitator,
        ..genuine.clone()
    };
    s.refused(&hijacked, &genuine_signature, "InvalidSignature");
    let settled = s
        .settle(&genuine, &genuine_signature, RetryPolicy::default(), 1)
        .unwrap();
    assert_eq!((settled.deposit_id, settled.amount_wei), (1, PRICE));
    eprintln!(
        "depositWithAuthorization used {} gas (distributor and payer already hold tokens)",
        settled.gas_used
    );
    assert_eq!(s.credited(s.payer), 2 * PRICE);
    assert_eq!(
        s.credited(facilitator),
        0,
        "the facilitator gains no credit"
    );
    assert_eq!(s.balance(&anvil.accounts[4]), 0, "nor tokens");
    assert_eq!(s.balance(&s.payer.to_string()), minted - 2 * PRICE);

    // The credit pays an answer; a contributor claims it on chain after sync, which credits
    // nothing a second time.
    let contributor = anvil.accounts[3].clone();
    let fee = PRICE + PRICE / 2;
    {
        let store = open_store(&s.data);
        let mut answer = synthetic_answer(
            "x402",
            1_700_000_000_000,
            vec![payment(address(&contributor), fee, 1_000_000)],
        );
        answer.record.caller = Some(s.payer);
        store.append_answers(vec![answer]).unwrap();
    }
    ok(provdb(&s.data, &["epoch", "close"]));
    let operator = key_file(&anvil.keys[0]);
    let synced = json(&ok(chain(
        &s.data,
        anvil,
        &["sync", "--key-file", &operator, "--json"],
    )));
    assert_eq!(
        synced["deposits_credited"],
        serde_json::json!([]),
        "{synced}"
    );
    assert_eq!(synced["chain_deposits"], 2, "{synced}");
    let claimed = json(&ok(chain(
        &s.data,
        anvil,
        &[
            "claim",
            &contributor,
            "--key-file",
            &key_file(&anvil.keys[5]),
            "--json",
        ],
    )));
    assert_eq!(claimed["paid_wei"], fee.to_string());
    let on_chain = chain_deposits(anvil, &s.distributor);
    assert_eq!(check_credited_once(&s.data, &on_chain), 2);

    // What came in is held or was paid out, to the unit.
    let deposited: u128 = on_chain.iter().map(|d| d.amount).sum();
    let total_claimed = anvil.read_u128(&s.distributor, "totalClaimed()(uint128)", &[]);
    assert_eq!(total_claimed, fee);
    assert_eq!(
        anvil.read_u128(&s.distributor, "totalDeposited()(uint128)", &[]),
        deposited
    );
    assert_eq!(s.balance(&s.distributor), deposited - total_claimed);
    assert_eq!(s.balance(&contributor), fee);
}

/// Sends `depositWithAuthorization` for `auth` (with `value`) straight to the distributor with
/// cast, from anvil's account 6; cast's stderr (the revert) or stdout.
fn submit_to_distributor(
    s: &Setup,
    auth: &TransferAuthorization,
    signature: &[u8],
    value: u128,
) -> String {
    let (r, rest) = signature.split_at(32);
    let (sig_s, v) = rest.split_at(32);
    let out = s.anvil.cast(&[
        "send",
        &s.distributor,
        "depositWithAuthorization(address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)",
        &auth.from.to_string(),
        &value.to_string(),
        &auth.valid_after.to_string(),
        &auth.valid_before.to_string(),
        &format!("0x{}", hex::encode(auth.nonce)),
        &v[0].to_string(),
        &format!("0x{}", hex::encode(r)),
        &format!("0x{}", hex::encode(sig_s)),
        "--private-key",
        &s.anvil.keys[6],
    ]);
    format!("{}{}", stdout(&out), stderr(&out))
}

#[test]
fn a_deposit_short_of_its_confirmations_is_credited_by_sync_and_only_once() {
    let s = Setup::new(PRICE * 10);
    let auth = s.authorization(PRICE, 0x21);
    let signature = sign_authorization(&s.domain, &auth, PAYER_KEY).unwrap();
    // anvil mines only on demand: three confirmations never come within two seconds.
    let impatient = RetryPolicy {
        attempts: 1,
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(50),
        attempt_timeout: Duration::from_secs(2),
    };
    let err = s.settle(&auth, &signature, impatient, 3).unwrap_err();
    let ChainError::Unconfirmed {
        tx, confirmations, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*confirmations, 3);
    assert!(tx.starts_with("0x"), "{err}");
    assert_eq!(
        s.credited(s.payer),
        0,
        "nothing credited before its confirmations"
    );
    assert_eq!(s.balance(&s.distributor), PRICE, "but it is on chain");

    // Sync asked for the same depth credits it once it is that deep.
    let operator = key_file(&s.anvil.keys[0]);
    let sync = |confirmations: &str| {
        json(&ok(chain(
            &s.data,
            &s.anvil,
            &[
                "sync",
                "--key-file",
                &operator,
                "--confirmations",
                confirmations,
                "--json",
            ],
        )))
    };
    assert_eq!(sync("3")["deposits_credited"], serde_json::json!([]));
    s.anvil.mine(2);
    let synced = sync("3");
    assert_eq!(
        synced["deposits_credited"].as_array().unwrap().len(),
        1,
        "{synced}"
    );
    assert_eq!(s.credited(s.payer), PRICE);

    // A settlement that waits for its confirmations while blocks come.
    let second = s.authorization(PRICE, 0x22);
    let second_signature = sign_authorization(&s.domain, &second, PAYER_KEY).unwrap();
    let miner = {
        let url = s.anvil.url.clone();
        std::thread::spawn(move || {
            for _ in 0..40 {
                std::thread::sleep(Duration::from_millis(100));
                let request = serde_json::json!(
                    {"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": ["0x1"]});
                let _ = reqwest::blocking::Client::new()
                    .post(&url)
                    .json(&request)
                    .send();
            }
        })
    };
    let settled = s
        .settle(&second, &second_signature, RetryPolicy::default(), 3)
        .unwrap();
    miner.join().unwrap();
    assert!(settled.credited);
    assert_eq!(settled.deposit_id, 1);
    assert_eq!(s.credited(s.payer), 2 * PRICE);
    let synced = sync("1");
    assert_eq!(
        synced["deposits_credited"],
        serde_json::json!([]),
        "{synced}"
    );
    let on_chain = chain_deposits(&s.anvil, &s.distributor);
    assert_eq!(check_credited_once(&s.data, &on_chain), 2);
}

impl Setup {
    /// Submits `auth`, signed `signature`, straight to the token from anvil's account `by`.
    fn send_to_token(&self, auth: &TransferAuthorization, signature: &[u8], by: usize) {
        let (r, rest) = signature.split_at(32);
        let (sig_s, v) = rest.split_at(32);
        ok(self.anvil.cast(&[
            "send",
            &self.token,
            "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)",
            &auth.from.to_string(),
            &auth.to.to_string(),
            &auth.value.to_string(),
            &auth.valid_after.to_string(),
            &auth.valid_before.to_string(),
            &format!("0x{}", hex::encode(auth.nonce)),
            &v[0].to_string(),
            &format!("0x{}", hex::encode(r)),
            &format!("0x{}", hex::encode(sig_s)),
            "--private-key",
            &self.anvil.keys[by],
        ]));
    }

    /// `provdb chain sync` with the operator's key: its JSON report.
    fn sync(&self) -> serde_json::Value {
        let key = key_file(&self.anvil.keys[0]);
        json(&ok(chain(
            &self.data,
            &self.anvil,
            &["sync", "--key-file", &key, "--json"],
        )))
    }

    fn total_deposited(&self) -> u128 {
        self.anvil
            .read_u128(&self.distributor, "totalDeposited()(uint128)", &[])
    }
}

#[test]
fn an_authorization_sent_straight_to_the_token_is_credited_to_its_payer_by_sync() {
    // A third party who sees the payload submits it to the token itself, not through the
    // distributor (as an outside facilitator does). The tokens reach the distributor outside
    // every deposit; settling the payload afterwards is refused (the nonce is spent); the next
    // sync credits them to the payer, once, and the submitter gains nothing.
    let s = Setup::new(PRICE * 10);
    let auth = s.authorization(PRICE, 0x31);
    let signature = sign_authorization(&s.domain, &auth, PAYER_KEY).unwrap();
    let attacker = s.anvil.accounts[6].clone();
    s.send_to_token(&auth, &signature, 6);
    s.refused(&auth, &signature, "AuthorizationAlreadyUsed");
    assert_eq!(s.credited(s.payer), 0, "not before a sync");
    assert_eq!(s.total_deposited(), 0);
    assert_eq!(
        s.balance(&s.distributor),
        PRICE,
        "held outside every deposit"
    );

    // A deposit through the distributor in the meantime is not taken for a plain transfer.
    let settled_auth = s.authorization(PRICE * 2, 0x32);
    let settled_sig = sign_authorization(&s.domain, &settled_auth, PAYER_KEY).unwrap();
    s.settle(&settled_auth, &settled_sig, RetryPolicy::default(), 1)
        .unwrap();

    let report = s.sync();
    let transfers = report["transfers_credited"].as_array().unwrap();
    assert_eq!(transfers.len(), 1, "{report}");
    assert_eq!(
        transfers[0]["from"].as_str().unwrap().to_lowercase(),
        s.payer.to_string().to_lowercase()
    );
    assert_eq!(transfers[0]["amount_wei"], PRICE.to_string());
    assert_eq!(
        s.credited(s.payer),
        PRICE * 3,
        "the plain transfer and the deposit"
    );
    assert_eq!(s.credited(address(&attacker)), 0);
    assert_eq!(s.balance(&attacker), 0);
    assert_eq!(s.total_deposited(), PRICE * 3);
    assert_eq!(
        s.balance(&s.distributor),
        s.total_deposited(),
        "everything is counted"
    );

    // Again: nothing more.
    let again = s.sync();
    assert!(
        again["transfers_credited"].as_array().unwrap().is_empty(),
        "{again}"
    );
    assert!(
        again["deposits_credited"].as_array().unwrap().is_empty(),
        "{again}"
    );
    assert_eq!(s.credited(s.payer), PRICE * 3);
    assert_eq!(s.total_deposited(), PRICE * 3);
}

#[test]
fn credit_transfer_credits_only_what_is_held_once_and_only_for_the_operator() {
    let s = Setup::new(PRICE * 10);
    let auth = s.authorization(PRICE, 0x41);
    let signature = sign_authorization(&s.domain, &auth, PAYER_KEY).unwrap();
    s.send_to_token(&auth, &signature, 6);
    let credit = |amount: u128, reference: &str, key: usize| {
        s.anvil.cast(&[
            "send",
            &s.distributor,
            "creditTransfer(address,uint256,bytes32)",
            &s.payer.to_string(),
            &amount.to_string(),
            reference,
            "--private-key",
            &s.anvil.keys[key],
        ])
    };
    // cast shows a custom error by its selector.
    let reverted = |output: &std::process::Output, error: &str| {
        let selector = s.anvil.cast_offline(&["sig", error]);
        assert!(!output.status.success(), "{error}");
        let text = stderr(output);
        assert!(
            text.contains(selector.trim()),
            "{error} ({selector}): {text}"
        );
    };
    let reference = format!("0x{}", "ab".repeat(32));
    // Anyone but the operator: refused (a payer crediting itself, an attacker itself).
    reverted(&credit(PRICE, &reference, 6), "NotOperator(address)");
    // More than is held outside the count: refused, even for the operator.
    reverted(
        &credit(PRICE + 1, &reference, 0),
        "AmountNotHeld(uint256,uint256)",
    );
    // The operator, for what is there: once per reference, and then nothing is left over.
    ok(credit(PRICE, &reference, 0));
    reverted(
        &credit(PRICE, &reference, 0),
        "TransferAlreadyCredited(bytes32)",
    );
    reverted(
        &credit(1, &format!("0x{}", "cd".repeat(32)), 0),
        "AmountNotHeld(uint256,uint256)",
    );
    assert_eq!(s.total_deposited(), PRICE);
    // The sync that follows credits the deposit it made, and leaves the transfer (under its
    // own reference, which the hand-made credit did not use): its amount is counted already.
    let report = s.sync();
    assert_eq!(
        report["deposits_credited"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert!(
        report["transfers_credited"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(
        report["transfers_not_held"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(s.credited(s.payer), PRICE);
    assert_eq!(s.balance(&s.distributor), s.total_deposited());
}

#[test]
fn the_token_verifies_the_x402_sdks_signature_and_eth_mode_refuses_x402() {
    // §3's test vector, signed by eth_account and viem for a "MockUSD" at a fixed address: the
    // token's runtime code is put at that address (its EIP-712 domain is computed from
    // immutables and `address(this)`), and the vector's signature moves the tokens.
    let anvil = Anvil::start();
    let deployed = deploy_token(&anvil, "MockUSD", "1");
    let at = "0x5fbdb2315678afecb367f642afa3c3ac6f2e3b15";
    let code = anvil.cast_ok(&["code", &deployed]);
    anvil.rpc("anvil_setCode", serde_json::json!([at, code]));
    assert_eq!(
        anvil.cast_ok(&["call", at, "DOMAIN_SEPARATOR()(bytes32)"]),
        "0x2e6b1e3a0cbb85e36f3335f10761bd33ae430d95d1030a1797ad61c17544907c"
    );
    let from = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    let to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    ok(anvil.cast(&[
        "send",
        at,
        "mint(address,uint256)",
        from,
        "10000",
        "--private-key",
        &anvil.keys[0],
    ]));
    let signature = "532d9a00e26e9847cb2fa43c1900730929d8cf1e77ee6a9e880c395b81dcc2406f19b0d7e6820ad60a8e0effd10ee6447460328ed1e0cd6d3188f7090ef5105b1c";
    ok(anvil.cast(&[
        "send",
        at,
        "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)",
        from,
        to,
        "10000",
        "0",
        "1900000000",
        &format!("0x{}", "11".repeat(32)),
        &format!("0x{signature}"),
        "--private-key",
        &anvil.keys[9],
    ]));
    assert_eq!(token_balance(&anvil, at, to), 10_000);
    assert_eq!(token_balance(&anvil, at, from), 0);

    // A distributor that takes ETH has no token domain and settles no authorization.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let distributor = deploy(&data, &anvil)["distributor"]
        .as_str()
        .unwrap()
        .to_string();
    let err = runtime()
        .block_on(token_domain(&data, None, RetryPolicy::default()))
        .unwrap_err();
    assert!(
        matches!(&err, ChainError::Invalid(m) if m.contains("ETH")),
        "{err:?}"
    );
    let domain = TokenDomain {
        name: "MockUSD".into(),
        version: "1".into(),
        chain_id: 31337,
        token: address(at),
    };
    let auth = TransferAuthorization {
        from: address(&anvil.accounts[2]),
        to: address(&distributor),
        value: PRICE,
        valid_after: 0,
        valid_before: now_s() + 600,
        nonce: [0x41; 32],
    };
    let signature = sign_authorization(&domain, &auth, &anvil.keys[2]).unwrap();
    let store = open_store(&data);
    let err = runtime()
        .block_on(settle_authorization(
            &store,
            &data,
            &anvil.keys[4],
            None,
            RetryPolicy::default(),
            &auth,
            &signature,
            1,
        ))
        .unwrap_err();
    assert!(
        matches!(&err, ChainError::Reverted { reason, .. } if reason.contains("WrongAsset")),
        "{err:?}"
    );
    assert!(store.deposits().unwrap().is_empty());
}
