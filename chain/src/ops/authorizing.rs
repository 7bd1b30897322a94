//! x402 payments on chain: the deployment's EIP-3009 token read (its EIP-712 domain, whether a
//! nonce is spent), and an authorization settled as a deposit for its signer
//! (`AttributionDistributor.depositWithAuthorization`), then credited.
//!
//! Invariants:
//! - The authorization moves money from its signer to the distributor only: the contract calls
//!   the token's `transferWithAuthorization(from, distributor, ...)`, whose signature fixes
//!   payer, payee and amount, checks that exactly `value` arrived, and emits `Deposited` for
//!   `from`. Whoever submits it (the facilitator's `key`) pays the gas and gains nothing.
//! - It is sent at most once per call ([`Client::send_once`](crate::client::Client)), and never
//!   when the node's gas estimate reverts (a spent nonce, an expired or not yet valid
//!   authorization, a bad signature, a short balance: [`ChainError::Reverted`] naming the
//!   custom error). The token spends the nonce, so a payload settles once whatever is called.
//! - It is credited only after its receipt succeeded and `confirmations` blocks hold it, from
//!   the `Deposited` event of the receipt read again then (a reorganisation may renumber it),
//!   through the same path and key as `sync` (`crediting.rs`): each deposit once, whichever
//!   of the two comes first. A deposit mined but short of its confirmations in time is
//!   [`ChainError::Unconfirmed`], credited by a later sync.
//! - Settlements signed by one key in this process run one at a time up to their receipt, so
//!   two concurrent payments never take the same account nonce.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, PoisonError};
use std::time::{Duration, Instant};

use alloy::primitives::{Address as EvmAddress, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionReceipt;
use provdb_storage::{Address, Store, hex32};

use super::crediting::{credit_once, decode, deposited_log};
use super::deploying::{Deployment, parse_address};
use crate::authorization::{TokenDomain, TransferAuthorization, Vrs};
use crate::bindings::Erc3009;
use crate::client::{RetryPolicy, StepError, classify, classify_rpc};
use crate::error::{ChainError, Result};

/// An x402 payment settled on chain as a deposit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledAuthorization {
    /// The distributor's id of the deposit.
    pub deposit_id: u64,
    /// The transaction (0x hash).
    pub tx: String,
    /// Its block.
    pub block: u64,
    /// What the deposit credits, in the token's smallest unit (the authorization's value).
    pub amount_wei: u128,
    /// The signer, whom the deposit credits.
    pub payer: Address,
    /// False when the deposit was credited already (by a `sync` that saw it first).
    pub credited: bool,
    /// Gas the transaction used (paid by the submitting key).
    pub gas_used: u64,
}

/// EIP-712 domain fields (EIP-5267): name, version, chainId and verifyingContract, no salt.
const DOMAIN_FIELDS: u8 = 0x0f;

impl Deployment {
    /// The deployment's token as an EIP-3009 token; [`ChainError::Invalid`] in ETH mode.
    fn erc3009(&self) -> Result<Erc3009::Erc3009Instance<DynProvider>> {
        let text = self.state.token.as_deref().ok_or_else(|| {
            ChainError::Invalid(
                "the distributor takes ETH: x402 payments need a distributor deployed for an \
                 EIP-3009 token (provdb chain deploy --token)"
                    .into(),
            )
        })?;
        let address = parse_address(text, "token")?;
        Ok(Erc3009::new(address, self.client.provider.clone()))
    }
}

/// A view call's value, or None when the contract lacks the function (it reverts or answers
/// nothing decodable); transport failures stay errors (retried).
async fn optional<T>(
    operation: &str,
    call: impl IntoFuture<Output = std::result::Result<T, alloy::contract::Error>>,
) -> std::result::Result<Option<T>, StepError> {
    use alloy::contract::Error as E;
    match call.await {
        Ok(value) => Ok(Some(value)),
        Err(E::ZeroData(..) | E::AbiError(_)) => Ok(None),
        Err(e) => match classify(operation, e) {
            StepError::Fatal(ChainError::Reverted { .. }) => Ok(None),
            other => Err(other),
        },
    }
}

/// The EIP-712 domain of the token of the deployment in `DATA/chain.json`: EIP-5267's
/// `eip712Domain()`, else `name()` and `version()`, the node's chain id and the token's
/// address; [`ChainError::Invalid`] when the distributor takes ETH.
///
/// The node must serve the deployment's chain, and a token that exposes `DOMAIN_SEPARATOR()`
/// must agree with the domain read, else [`ChainError::Invalid`]: x402 clients' signatures
/// would not verify on chain.
pub async fn token_domain(
    data_dir: &Path,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
) -> Result<TokenDomain> {
    let d = Deployment::open(data_dir, rpc_url, None, retry)?;
    let token = d.erc3009()?;
    let chain_id = d.client.chain_id().await?;
    if chain_id != d.state.chain_id {
        return Err(ChainError::Invalid(format!(
            "the RPC endpoint serves chain {chain_id}, but the contracts are deployed on chain {}",
            d.state.chain_id
        )));
    }
    let token_address = Address(token.address().into_array());
    let eip5267 = d
        .client
        .run("read eip712Domain", || async {
            optional("eip712Domain", token.eip712Domain().call()).await
        })
        .await?;
    let (name, version) = match eip5267 {
        Some(domain) => {
            if domain.fields.0 != [DOMAIN_FIELDS] {
                return Err(ChainError::Invalid(format!(
                    "the token's EIP-712 domain has fields {:#04x}; x402 signs over name, \
                     version, chainId and verifyingContract only ({DOMAIN_FIELDS:#04x})",
                    domain.fields.0[0]
                )));
            }
            if domain.chainId != U256::from(chain_id)
                || domain.verifyingContract != *token.address()
            {
                return Err(ChainError::Invalid(format!(
                    "the token's EIP-712 domain names chain {} and contract {}, not chain \
                     {chain_id} and the token {token_address}",
                    domain.chainId, domain.verifyingContract
                )));
            }
            (domain.name, domain.version)
        }
        None => {
            let name = d
                .client
                .run("read name", || async {
                    token.name().call().await.map_err(|e| classify("name", e))
                })
                .await?;
            let version = d
                .client
                .run("read version", || async {
                    optional("version", token.version().call()).await
                })
                .await?
                .ok_or_else(|| {
                    ChainError::Invalid(format!(
                        "the token {token_address} has neither eip712Domain() nor version(): its \
                         EIP-712 version is unknown"
                    ))
                })?;
            (name, version)
        }
    };
    let domain = TokenDomain {
        name,
        version,
        chain_id,
        token: token_address,
    };
    let separator = d
        .client
        .run("read DOMAIN_SEPARATOR", || async {
            optional("DOMAIN_SEPARATOR", token.DOMAIN_SEPARATOR().call()).await
        })
        .await?;
    if let Some(separator) = separator
        && separator.0 != domain.separator()
    {
        return Err(ChainError::Invalid(format!(
            "the token's DOMAIN_SEPARATOR {} is not that of the domain {{name {:?}, version \
             {:?}, chainId {chain_id}, verifyingContract {token_address}}} ({})",
            hex32(&separator.0),
            domain.name,
            domain.version,
            hex32(&domain.separator())
        )));
    }
    Ok(domain)
}

/// Whether the token has seen this (authorizer, nonce): `authorizationState`.
pub async fn authorization_used(
    data_dir: &Path,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
    from: Address,
    nonce: [u8; 32],
) -> Result<bool> {
    let d = Deployment::open(data_dir, rpc_url, None, retry)?;
    let token = d.erc3009()?;
    d.client
        .run("read authorizationState", || async {
            token
                .authorizationState(EvmAddress::from(from.0), B256::from(nonce))
                .call()
                .await
                .map_err(|e| classify("authorizationState", e))
        })
        .await
}

/// The lock of the settlements `sender` signs in this process.
fn sender_lock(sender: EvmAddress) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<std::sync::Mutex<HashMap<EvmAddress, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let mut locks = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(locks.entry(sender).or_default())
}

/// Settles `auth`, signed `signature` by its payer, as a deposit for the payer: sends the
/// distributor's `depositWithAuthorization` signed by `key` (the facilitator, any funded key:
/// it pays the gas), waits until `confirmations` blocks hold it (1: mined), then credits the
/// deposit to `auth.from` in `store` once, through the deposit key `chain sync` credits (so
/// neither credits it twice), and returns it (`credited` false when a sync was first).
///
/// A refusal by the contracts is [`ChainError::Reverted`] naming the custom error
/// (`AuthorizationAlreadyUsed`, `AuthorizationExpired`, `AuthorizationNotYetValid`,
/// `InvalidSignature`, `ERC20InsufficientBalance`, `WrongAsset`...); nothing is credited then,
/// nor for a transaction not mined. The transaction is sent at most once per call.
///
/// Refused before anything is sent ([`ChainError::Invalid`]): a signature that is not 65
/// canonical bytes, a zero value, and an authorization whose `to` is not the distributor (it
/// could not be settled as a deposit). Mined but not `confirmations` deep within the retry
/// policy's whole budget (`attempt_timeout` × `attempts`): [`ChainError::Unconfirmed`].
#[expect(
    clippy::too_many_arguments,
    reason = "the API the server codes against, like `sync`'s"
)]
pub async fn settle_authorization(
    store: &Store,
    data_dir: &Path,
    key: &str,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
    auth: &TransferAuthorization,
    signature: &[u8],
    confirmations: u64,
) -> Result<SettledAuthorization> {
    let vrs = Vrs::parse(signature)?;
    if auth.value == 0 {
        return Err(ChainError::Invalid(
            "the authorization moves nothing (value 0)".into(),
        ));
    }
    let d = Deployment::open(data_dir, rpc_url, Some(key), retry)?;
    let distributor = d.contract();
    if auth.to != distributor {
        return Err(ChainError::Invalid(format!(
            "the authorization pays {}, not the distributor {distributor}: it cannot be settled \
             as a deposit",
            auth.to
        )));
    }
    let call = d.distributor().depositWithAuthorization(
        EvmAddress::from(auth.from.0),
        U256::from(auth.value),
        U256::from(auth.valid_after),
        U256::from(auth.valid_before),
        B256::from(auth.nonce),
        vrs.v,
        vrs.r,
        vrs.s,
    );
    let operation = format!(
        "settle the authorization of {} (nonce {})",
        auth.from,
        hex32(&auth.nonce)
    );
    let receipt = {
        let lock = sender_lock(d.client.sender()?);
        let _held = lock.lock().await;
        match d.client.send_once(&operation, call.clone()).await {
            Ok(receipt) => receipt,
            Err(ChainError::Reverted { reason, .. }) if reason.contains("reverted on chain") => {
                return Err(explain(&operation, &reason, call.call()).await);
            }
            Err(e) => return Err(e),
        }
    };
    let receipt = confirmed(&d, &operation, receipt, confirmations).await?;
    let log = deposited_log(&d, &receipt).ok_or_else(|| ChainError::Reverted {
        operation: operation.clone(),
        reason: format!(
            "transaction {} succeeded without a Deposited event",
            receipt.transaction_hash
        ),
    })?;
    let deposit = decode(&d, log)?;
    if deposit.account != auth.from || deposit.amount_wei != auth.value {
        return Err(ChainError::Invalid(format!(
            "{operation}: the distributor's Deposited event credits {} wei to {}, not {} wei to \
             the signer: is {distributor} provdb's distributor?",
            deposit.amount_wei, deposit.account, auth.value
        )));
    }
    let settled = SettledAuthorization {
        deposit_id: deposit.key.deposit_id,
        tx: hex32(&deposit.tx_hash),
        block: deposit.block,
        amount_wei: deposit.amount_wei,
        payer: deposit.account,
        credited: false,
        gas_used: receipt.gas_used,
    };
    let credited = credit_once(store, deposit)?;
    Ok(SettledAuthorization {
        credited,
        ..settled
    })
}

/// A transaction that passed its gas estimate but reverted on chain (another transaction got
/// in first): the reason the same call gives now, when it names one.
async fn explain(
    operation: &str,
    on_chain: &str,
    call: impl IntoFuture<Output = std::result::Result<U256, alloy::contract::Error>>,
) -> ChainError {
    let reason = match call.await {
        Err(e) => match classify(operation, e) {
            StepError::Fatal(ChainError::Reverted { reason, .. }) => {
                format!("{reason} ({on_chain})")
            }
            _ => on_chain.to_string(),
        },
        Ok(_) => on_chain.to_string(),
    };
    ChainError::Reverted {
        operation: operation.to_string(),
        reason,
    }
}

/// `receipt` read again once its block is `confirmations` deep (1: as mined), or
/// [`ChainError::Unconfirmed`] when that takes longer than the retry policy's whole budget.
pub(crate) async fn confirmed(
    d: &Deployment,
    operation: &str,
    receipt: TransactionReceipt,
    confirmations: u64,
) -> Result<TransactionReceipt> {
    if confirmations <= 1 {
        return Ok(receipt);
    }
    let hash = receipt.transaction_hash;
    let retry = d.client.retry;
    let deadline = Instant::now() + retry.attempt_timeout.saturating_mul(retry.attempts);
    let pause = retry
        .first_backoff
        .clamp(Duration::from_millis(50), Duration::from_secs(2));
    let mut block = receipt.block_number;
    loop {
        let head = d.head_block().await?;
        // A block is one confirmation deep once mined: `head - n + 1` has n.
        if block.is_some_and(|b| head + 1 >= b + confirmations) {
            let again = d
                .client
                .run("read the receipt", || async {
                    d.client
                        .provider
                        .get_transaction_receipt(hash)
                        .await
                        .map_err(classify_rpc)
                })
                .await?;
            match again {
                Some(again) if again.block_number == block => {
                    if !again.status() {
                        return Err(ChainError::Reverted {
                            operation: operation.to_string(),
                            reason: format!(
                                "transaction {hash} reverted on chain after a reorganisation"
                            ),
                        });
                    }
                    return Ok(again);
                }
                // Moved by a reorganisation (or dropped): wait for where it is now.
                moved => block = moved.and_then(|r| r.block_number),
            }
        }
        if Instant::now() >= deadline {
            return Err(ChainError::Unconfirmed {
                operation: operation.to_string(),
                tx: format!("{hash}"),
                block,
                confirmations,
            });
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>(_: &T) {}

    /// The server awaits these in its request handlers, which tokio may move between threads.
    #[test]
    #[allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]
    fn the_futures_are_send() {
        let dir = std::path::PathBuf::new();
        let auth = TransferAuthorization {
            from: Address([1; 20]),
            to: Address([2; 20]),
            value: 1,
            valid_after: 0,
            valid_before: 1,
            nonce: [0; 32],
        };
        let retry = RetryPolicy::default();
        send(&token_domain(&dir, None, retry));
        send(&authorization_used(
            &dir, None, retry, auth.from, auth.nonce,
        ));
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), Default::default()).unwrap();
        send(&settle_authorization(
            &store,
            &dir,
            "",
            None,
            retry,
            &auth,
            &[],
            1,
        ));
    }
}
