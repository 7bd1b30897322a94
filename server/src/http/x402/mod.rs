//! x402: paying per request with no account and no API key. A cited answer asked with no key,
//! or by a key whose balance is short, gets a 402 whose `PAYMENT-REQUIRED` header says what to
//! pay: the answer's price at its `max_tokens` upper bound, in the distributor's ERC-20 (an
//! EIP-3009 token such as USDC), to the distributor, on this chain. The client signs an
//! EIP-3009 authorization and sends the request again with it (`PAYMENT-SIGNATURE`). provdb is
//! its own facilitator: it checks the payment (`verify.rs`), settles it on chain as a deposit
//! for the signer (`depositWithAuthorization`), waits for the confirmations asked for
//! (`--x402-confirmations`, 1: mined; no answer is given on an unconfirmed payment, so a
//! payment is never taken optimistically), credits that deposit to the signer once (the key
//! `chain sync` uses), and answers as the signer, whose account the answer then charges in
//! the same write as the answer. The receipt (`PAYMENT-RESPONSE`) carries the transaction.
//!
//! The price paid is the upper bound; the answer charges its fee, and the rest stays in the
//! payer's account (spent by its later answers, or refunded by `provdb account refund`).
//!
//! Invariants:
//! - Nothing is answered and nothing written for a payment refused, whatever the reason
//!   (every refusal is a 402 naming x402's reason code), or one whose settlement fails.
//! - A payment is settled at most once: the token refuses a used nonce, and one payment is
//!   settled by one request at a time here.
//! - Once settled, the deposit is credited whatever happens to the answer: a crash or a failed
//!   answer leaves the money in the payer's account, and `chain sync` credits nothing twice.

mod facilitator;
mod paying;
mod verify;
mod wire;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use axum::http::HeaderMap;
use provdb::Address;
use provdb_chain::{RetryPolicy, TokenDomain};

pub(crate) use paying::resolve;
pub(crate) use wire::PAYMENT_RESPONSE;

use crate::http::error::ApiError;
use verify::{Refusal, Verified};
use wire::{
    PAYMENT_REQUIRED, PaymentPayload, PaymentRequired, PaymentRequirements, ResourceInfo, SCHEME,
    SettleResponse, X402_VERSION, encode_header,
};

/// What `provdb serve --x402` was told.
#[derive(Clone, Debug)]
pub(crate) struct X402Config {
    /// The data directory (its `chain.json` names the distributor and the token).
    pub(crate) data_dir: PathBuf,
    /// The facilitator's key: it sends the settlements and pays their gas.
    pub(crate) key: String,
    /// The RPC endpoint (default: the one recorded at deploy).
    pub(crate) rpc_url: Option<String>,
    /// Blocks a settlement must be deep before the answer.
    pub(crate) confirmations: u64,
    /// How long a client's authorization is valid for (x402's `maxTimeoutSeconds`).
    pub(crate) max_timeout_seconds: u64,
    /// An outside facilitator's URL, which then verifies and settles (None: provdb does).
    pub(crate) facilitator: Option<String>,
}

/// x402 on a running server.
pub(crate) struct X402 {
    config: X402Config,
    domain: TokenDomain,
    /// The distributor, EIP-55 mixed case.
    pay_to: String,
    /// `eip155:<chain id>`.
    network: String,
    /// Payments being settled, by (payer, nonce).
    settling: Mutex<HashSet<(Address, [u8; 32])>>,
}

impl X402 {
    /// Reads the deployment's token (its EIP-712 name and version) and the distributor.
    pub(crate) async fn load(config: X402Config) -> anyhow::Result<Self> {
        let domain = provdb_chain::token_domain(
            &config.data_dir,
            config.rpc_url.as_deref(),
            RetryPolicy::default(),
        )
        .await?;
        let state = provdb_chain::ChainState::load(&config.data_dir)?;
        let network = format!("eip155:{}", domain.chain_id);
        if let Some(url) = &config.facilitator {
            // Its settlements reach the distributor as plain transfers, which only the
            // operator credits (`creditTransfer`).
            let signer = provdb_chain::key_address(&config.key)?;
            anyhow::ensure!(
                signer.to_string().eq_ignore_ascii_case(&state.operator),
                "with --x402-facilitator, the x402 key must be the distributor's operator \
                 ({}), which credits the facilitator's settlements; it is {signer}",
                state.operator
            );
            facilitator::check_supported(url, SCHEME, &network).await?;
        }
        Ok(Self {
            network,
            pay_to: provdb_chain::checksummed(state.distributor.parse().map_err(|_| {
                anyhow::anyhow!(
                    "chain.json's distributor {:?} is not an address",
                    state.distributor
                )
            })?),
            domain,
            config,
            settling: Mutex::new(HashSet::new()),
        })
    }

    /// What a payment of `amount` must match.
    fn requirements(&self, amount: u128) -> PaymentRequirements {
        PaymentRequirements {
            scheme: SCHEME.into(),
            network: self.network.clone(),
            asset: provdb_chain::checksummed(self.domain.token),
            amount: amount.to_string(),
            pay_to: self.pay_to.clone(),
            max_timeout_seconds: self.config.max_timeout_seconds,
            extra: serde_json::json!({
                "name": self.domain.name,
                "version": self.domain.version,
            }),
        }
    }

    /// A 402 asking for `amount` for `resource`, its `reason` in the header's `error` and the
    /// message in the body.
    fn challenge(
        &self,
        resource: &ResourceInfo,
        amount: u128,
        reason: &str,
        message: &str,
    ) -> ApiError {
        let required = PaymentRequired {
            x402_version: X402_VERSION,
            error: Some(reason.to_string()),
            resource: resource.clone(),
            accepts: vec![self.requirements(amount)],
        };
        ApiError::payment(
            format!(
                "{message}: pay {amount} of token {} to {} on {} with x402 ({reason})",
                self.domain.token, self.pay_to, self.network
            ),
            "payment_required",
        )
        .with_header(PAYMENT_REQUIRED, encode_header(&required))
    }

    /// A 402 for a refused payment: the requirements again, with the reason.
    fn refuse(&self, resource: &ResourceInfo, amount: u128, refusal: &Refusal) -> ApiError {
        self.challenge(resource, amount, &refusal.reason, &refusal.message)
    }

    /// The failed receipt of a settlement that did not happen.
    fn failed_receipt(&self, refusal: &Refusal, payer: Address) -> String {
        encode_header(&SettleResponse {
            success: false,
            error_reason: Some(refusal.reason.to_string()),
            payer: Some(payer.to_string()),
            transaction: String::new(),
            network: self.network.clone(),
            amount: None,
        })
    }
}

/// The resource a request is for: this route on the host it was sent to.
fn resource_of(headers: &HeaderMap, path: &str) -> ResourceInfo {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    ResourceInfo {
        url: format!("http://{host}{path}"),
        description: Some("a cited answer from provdb".into()),
        mime_type: Some("application/json".into()),
    }
}

/// Marks a payment as being settled until dropped.
struct Settling<'a> {
    set: &'a Mutex<HashSet<(Address, [u8; 32])>>,
    key: (Address, [u8; 32]),
}

impl Drop for Settling<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.key);
        }
    }
}

impl X402 {
    /// Settles `verified` on chain as a deposit for its payer and credits it; the receipt.
    async fn settle(
        &self,
        db: provdb::Db,
        verified: &Verified,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
    ) -> Result<SettleResponse, Refusal> {
        let auth = &verified.authorization;
        let key = (auth.from, auth.nonce);
        let _settling = {
            let mut set = self
                .settling
                .lock()
                .map_err(|_| Refusal::new("unexpected_settle_error", "a lock is poisoned"))?;
            if !set.insert(key) {
                return Err(Refusal::new(
                    "invalid_exact_evm_nonce_already_used",
                    "this payment is being settled by another request",
                ));
            }
            Settling {
                set: &self.settling,
                key,
            }
        };
        // On a blocking thread with a runtime of its own, as the CLI runs the chain crate's
        // operations: crediting the deposit writes RocksDB, which must not run on the
        // server's two async worker threads. (The futures are `Send` too: `the_futures_are_send`.)
        let (config, verified, payment, requirements) = (
            self.config.clone(),
            verified.clone(),
            payment.clone(),
            requirements.clone(),
        );
        let settled = tokio::task::spawn_blocking(move || {
            on_chain(&db, &config, &verified, &payment, &requirements)
        })
        .await
        .map_err(|e| Refusal::new("unexpected_settle_error", e.to_string()))??;
        Ok(SettleResponse {
            success: true,
            error_reason: None,
            payer: Some(settled.payer.to_string()),
            transaction: settled.tx,
            network: self.network.clone(),
            amount: Some(settled.amount_wei.to_string()),
        })
    }
}

/// Checks the nonce is unused, then settles the payment as a deposit for its signer (itself,
/// or through the outside facilitator) and credits it: on a current-thread runtime of its own
/// (called on a blocking thread).
fn on_chain(
    db: &provdb::Db,
    config: &X402Config,
    verified: &Verified,
    payment: &PaymentPayload,
    requirements: &PaymentRequirements,
) -> Result<provdb_chain::SettledAuthorization, Refusal> {
    let auth = &verified.authorization;
    let unexpected =
        |e: &dyn std::fmt::Display| Refusal::new("unexpected_settle_error", e.to_string());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| unexpected(&e))?;
    let retry = RetryPolicy::default();
    let rpc = config.rpc_url.as_deref();
    runtime.block_on(async {
        let used =
            provdb_chain::authorization_used(&config.data_dir, rpc, retry, auth.from, auth.nonce)
                .await
                .map_err(|e| unexpected(&e))?;
        if used {
            return Err(Refusal::new(
                "invalid_exact_evm_nonce_already_used",
                "this authorization's nonce was already used: a payment is spent once",
            ));
        }
        let Some(url) = &config.facilitator else {
            return provdb_chain::settle_authorization(
                db.store(),
                &config.data_dir,
                &config.key,
                rpc,
                retry,
                auth,
                &verified.signature,
                config.confirmations,
            )
            .await
            .map_err(settlement_refusal);
        };
        let tx = facilitator::settle(url, payment, verified, requirements).await?;
        provdb_chain::credit_settled_authorization(
            db.store(),
            &config.data_dir,
            &config.key,
            rpc,
            retry,
            &tx,
            auth,
            config.confirmations,
        )
        .await
        .map_err(settlement_refusal)
    })
}

/// x402's reason for a settlement that failed, from the revert the chain crate decoded.
fn settlement_refusal(error: provdb_chain::ChainError) -> Refusal {
    let text = error.to_string();
    if let provdb_chain::ChainError::Unconfirmed { tx, .. } = &error {
        // Mined but not yet deep enough: no answer now; `chain sync` credits it later.
        return Refusal::new(
            "settlement_pending",
            format!(
                "the payment {tx} is not confirmed yet; nothing was answered, and the deposit \
                 is credited to the payer once confirmed"
            ),
        );
    }
    let reason = [
        (
            "AuthorizationAlreadyUsed",
            "invalid_exact_evm_nonce_already_used",
        ),
        (
            "AuthorizationExpired",
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            "AuthorizationNotYetValid",
            "invalid_exact_evm_payload_authorization_valid_after",
        ),
        ("InvalidSignature", "invalid_exact_evm_payload_signature"),
        (
            "ERC20InsufficientBalance",
            "invalid_exact_evm_insufficient_balance",
        ),
    ]
    .iter()
    .find(|(name, _)| text.contains(name))
    .map_or("transaction_failed", |(_, reason)| reason);
    Refusal::new(
        reason,
        format!("the settlement failed, nothing was charged: {text}"),
    )
}
