//! The chain commands: deploy the contracts, sync closed epochs and ingest batches, compare
//! local and on-chain state, claim.
//!
//! Invariants:
//! - The local database is only read here; a failure on the chain side never changes it.
//!   Only the chain-state file (`chain.json`, see [`crate::state`]) is written.
//! - Every post is a retried step that reads the contract first (`lastEpoch`/`lastTotal`,
//!   `lastSequence`) and sends only what is still missing; the contracts refuse an epoch or a
//!   batch out of order, so a crashed or repeated sync can neither skip nor double one.
//! - Before posting, the roots already on chain are compared with the local ones: a chain that
//!   holds other roots for the same epochs (another database, a rewritten ledger) is reported
//!   as [`ChainError::Diverged`], and nothing is sent.

use std::path::Path;

use alloy::primitives::{Address as EvmAddress, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::sol_types::SolEvent;
use provdb_storage::{Address, Epoch, LogEntry, Store, keccak256};
use serde::Serialize;

use crate::bindings::{AttributionDistributor, ProvenanceRegistry};
use crate::client::{Client, RetryPolicy, StepError, classify, classify_rpc};
use crate::error::{ChainError, Result};
use crate::state::{ChainState, TxRecord};
use provdb_storage::record_ids_root as records_root;

fn hex32(bytes: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn parse_address(text: &str, what: &str) -> Result<EvmAddress> {
    text.parse()
        .map_err(|_| ChainError::Invalid(format!("invalid {what} address '{text}'")))
}

pub(crate) fn tx_record(receipt: &TransactionReceipt) -> TxRecord {
    TxRecord {
        tx: format!("{}", receipt.transaction_hash),
        block: receipt.block_number,
        gas_used: Some(receipt.gas_used),
    }
}

pub(crate) fn check_receipt(
    operation: &str,
    receipt: &TransactionReceipt,
) -> Result<(), StepError> {
    if receipt.status() {
        Ok(())
    } else {
        Err(StepError::Fatal(ChainError::Reverted {
            operation: operation.to_string(),
            reason: format!("transaction {} reverted on chain", receipt.transaction_hash),
        }))
    }
}

/// Where `deploy` put the contracts.
#[derive(Clone, Debug, Serialize)]
pub struct DeployReport {
    /// Chain id.
    pub chain_id: u64,
    /// The operator (deployer).
    pub operator: String,
    /// AttributionDistributor address.
    pub distributor: String,
    /// ProvenanceRegistry address.
    pub registry: String,
    /// The block of the deployment.
    pub deploy_block: u64,
    /// Gas used by the two deployments.
    pub gas_used: u64,
}

/// Deploys both contracts from `key`'s account through `rpc_url` and records them in
/// `data_dir/chain.json`. Refuses to replace a recorded deployment unless `force`.
pub async fn deploy(
    data_dir: &Path,
    rpc_url: &str,
    key: &str,
    force: bool,
    retry: RetryPolicy,
) -> Result<DeployReport> {
    if !force && ChainState::load_optional(data_dir)?.is_some() {
        return Err(ChainError::AlreadyDeployed(crate::state::state_path(
            data_dir,
        )));
    }
    let mut client = Client::connect(rpc_url, Some(key), retry)?;
    let operator = client.sender()?;
    let chain_id = client.chain_id().await?;
    client.retry.attempts = 1;
    // Deployments are not retried: a retry after a lost receipt would deploy twice. One attempt
    // each (still bounded by the attempt timeout); a failure leaves no state file, so deploy
    // can simply be rerun.
    let distributor = client
        .run("deploy AttributionDistributor", || async {
            let pending = AttributionDistributor::deploy_builder(&client.provider)
                .send()
                .await
                .map_err(|e| classify("deploy AttributionDistributor", e))?;
            let receipt = pending
                .get_receipt()
                .await
                .map_err(|e| StepError::Transient(e.to_string()))?;
            check_receipt("deploy AttributionDistributor", &receipt)?;
            Ok(receipt)
        })
        .await?;
    let registry = client
        .run("deploy ProvenanceRegistry", || async {
            let pending = ProvenanceRegistry::deploy_builder(&client.provider)
                .send()
                .await
                .map_err(|e| classify("deploy ProvenanceRegistry", e))?;
            let receipt = pending
                .get_receipt()
                .await
                .map_err(|e| StepError::Transient(e.to_string()))?;
            check_receipt("deploy ProvenanceRegistry", &receipt)?;
            Ok(receipt)
        })
        .await?;
    let missing = || ChainError::Reverted {
        operation: "deploy".into(),
        reason: "the receipt names no contract address".into(),
    };
    let state = ChainState {
        rpc_url: rpc_url.to_string(),
        chain_id,
        operator: format!("{operator}"),
        distributor: format!("{}", distributor.contract_address.ok_or_else(missing)?),
        registry: format!("{}", registry.contract_address.ok_or_else(missing)?),
        deploy_block: distributor.block_number.unwrap_or(0),
        epochs: Default::default(),
        batches: Default::default(),
        datanets: Default::default(),
        adapters: Default::default(),
    };
    state.save(data_dir)?;
    Ok(DeployReport {
        chain_id,
        operator: state.operator,
        distributor: state.distributor,
        registry: state.registry,
        deploy_block: state.deploy_block,
        gas_used: distributor.gas_used + registry.gas_used,
    })
}

/// The deployed contracts, bound to a client.
pub(crate) struct Deployment {
    pub(crate) state: ChainState,
    pub(crate) client: Client,
    distributor: EvmAddress,
    registry: EvmAddress,
}

impl Deployment {
    fn open(
        data_dir: &Path,
        rpc_url: Option<&str>,
        key: Option<&str>,
        retry: RetryPolicy,
    ) -> Result<Self> {
        let state = ChainState::load(data_dir)?;
        let url = rpc_url.unwrap_or(&state.rpc_url).to_string();
        let client = Client::connect(&url, key, retry)?;
        let distributor = parse_address(&state.distributor, "distributor")?;
        let registry = parse_address(&state.registry, "registry")?;
        Ok(Self {
            state,
            client,
            distributor,
            registry,
        })
    }

    fn distributor(
        &self,
    ) -> AttributionDistributor::AttributionDistributorInstance<&alloy::providers::DynProvider>
    {
        AttributionDistributor::new(self.distributor, &self.client.provider)
    }

    pub(crate) fn registry(
        &self,
    ) -> ProvenanceRegistry::ProvenanceRegistryInstance<&alloy::providers::DynProvider> {
        ProvenanceRegistry::new(self.registry, &self.client.provider)
    }

    async fn last_epoch(&self) -> Result<(u64, u128)> {
        self.client
            .run("read lastEpoch", || async {
                let d = self.distributor();
                let epoch = d
                    .lastEpoch()
                    .call()
                    .await
                    .map_err(|e| classify("lastEpoch", e))?;
                let total = d
                    .lastTotal()
                    .call()
                    .await
                    .map_err(|e| classify("lastTotal", e))?;
                let total = u128::try_from(total).map_err(|_| {
                    StepError::Fatal(ChainError::Invalid(
                        "the on-chain total exceeds 2^128 wei".into(),
                    ))
                })?;
                Ok((epoch, total))
            })
            .await
    }

    async fn root(&self, epoch: u64) -> Result<[u8; 32]> {
        self.client
            .run("read roots", || async {
                let root = self
                    .distributor()
                    .roots(U256::from(epoch))
                    .call()
                    .await
                    .map_err(|e| classify("roots", e))?;
                Ok(root.0)
            })
            .await
    }

    async fn last_sequence(&self) -> Result<u64> {
        self.client
            .run("read lastSequence", || async {
                self.registry()
                    .lastSequence()
                    .call()
                    .await
                    .map_err(|e| classify("lastSequence", e))
            })
            .await
    }

    /// The transaction that posted `epoch`, from its `EpochPosted` event (a run that crashed
    /// after sending did not record it).
    async fn find_epoch_tx(&self, epoch: u64) -> Result<Option<TxRecord>> {
        let filter = Filter::new()
            .address(self.distributor)
            .event_signature(AttributionDistributor::EpochPosted::SIGNATURE_HASH)
            .topic1(B256::from(U256::from(epoch)))
            .from_block(self.state.deploy_block);
        let logs = self
            .client
            .run("read EpochPosted events", || async {
                self.client
                    .provider
                    .get_logs(&filter)
                    .await
                    .map_err(classify_rpc)
            })
            .await?;
        Ok(logs.first().and_then(|log| {
            log.transaction_hash.map(|tx| TxRecord {
                tx: format!("{tx}"),
                block: log.block_number,
                gas_used: None,
            })
        }))
    }

    /// Compares the roots on chain with the local ones; the chain's last epoch and total.
    async fn check_epochs(&self, local: &[Epoch]) -> Result<(u64, u128)> {
        let (chain_last, chain_total) = self.last_epoch().await?;
        if chain_last > local.len() as u64 {
            return Err(ChainError::Diverged {
                epoch: chain_last,
                chain_root: hex32(&self.root(chain_last).await?),
                local_root: format!("nothing (only {} epochs are closed here)", local.len()),
            });
        }
        for epoch in local.iter().take(chain_last as usize) {
            let chain_root = self.root(epoch.epoch).await?;
            if chain_root != epoch.root {
                return Err(ChainError::Diverged {
                    epoch: epoch.epoch,
                    chain_root: hex32(&chain_root),
                    local_root: hex32(&epoch.root),
                });
            }
        }
        Ok((chain_last, chain_total))
    }
}

/// One epoch sync posted.
#[derive(Clone, Debug, Serialize)]
pub struct PostedEpoch {
    /// Its number.
    pub epoch: u64,
    /// Its root.
    pub root: String,
    /// Its total, in wei (decimal).
    pub total_wei: String,
    /// The wei sent with it (decimal).
    pub funded_wei: String,
    /// The transaction.
    pub tx: String,
    /// Gas used.
    pub gas_used: u64,
}

/// One ingest batch sync anchored.
#[derive(Clone, Debug, Serialize)]
pub struct AnchoredBatch {
    /// Its database sequence number.
    pub sequence: u64,
    /// Its Datanet.
    pub datanet_id: u32,
    /// Records in it.
    pub records: u32,
    /// Merkle root of their ids.
    pub records_root: String,
    /// The transaction.
    pub tx: String,
    /// Gas used.
    pub gas_used: u64,
}

/// What `sync` did.
#[derive(Clone, Debug, Serialize)]
pub struct SyncReport {
    /// Epochs posted by this run, in order.
    pub epochs_posted: Vec<PostedEpoch>,
    /// Datanets registered by this run.
    pub datanets_registered: Vec<u32>,
    /// Ingest batches anchored by this run, in order.
    pub batches_anchored: Vec<AnchoredBatch>,
    /// Adapters registered by this run (with their owners).
    pub adapters_registered: Vec<crate::adapters::RegisteredAdapter>,
    /// The chain's last epoch afterwards.
    pub chain_last_epoch: u64,
    /// The chain's last anchored sequence number afterwards.
    pub chain_last_sequence: u64,
}

/// Posts every closed epoch and anchors every ingest batch the chain does not have yet, in
/// order, and registers the `adapters` it does not hold, signing with `key` (the operator's).
/// Idempotent (see the module docs).
pub async fn sync(
    store: &Store,
    data_dir: &Path,
    key: &str,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
    adapters: &[crate::adapters::AdapterRecord],
) -> Result<SyncReport> {
    let mut deployment = Deployment::open(data_dir, rpc_url, Some(key), retry)?;
    let epochs_posted = sync_epochs(store, data_dir, &mut deployment).await?;
    let (datanets_registered, batches_anchored) =
        sync_batches(store, data_dir, &mut deployment).await?;
    let adapters_registered =
        crate::adapters::register(adapters, data_dir, &mut deployment).await?;
    let (chain_last_epoch, _) = deployment.last_epoch().await?;
    let chain_last_sequence = deployment.last_sequence().await?;
    Ok(SyncReport {
        epochs_posted,
        datanets_registered,
        batches_anchored,
        adapters_registered,
        chain_last_epoch,
        chain_last_sequence,
    })
}

async fn sync_epochs(
    store: &Store,
    data_dir: &Path,
    d: &mut Deployment,
) -> Result<Vec<PostedEpoch>> {
    let local = store.epochs()?;
    let (chain_last, _) = d.check_epochs(&local).await?;
    // Recover the hashes of posts a crashed run sent but did not record.
    let mut recovered = false;
    for number in 1..=chain_last {
        if !d.state.epochs.contains_key(&number)
            && let Some(record) = d.find_epoch_tx(number).await?
        {
            d.state.epochs.insert(number, record);
            recovered = true;
        }
    }
    if recovered {
        d.state.save(data_dir)?;
    }
    let mut posted = Vec::new();
    for epoch in local.iter().filter(|e| e.epoch > chain_last) {
        let operation = format!("post epoch {}", epoch.epoch);
        let outcome = d
            .client
            .run(&operation, || async {
                let dist = d.distributor();
                let on_chain = dist
                    .lastEpoch()
                    .call()
                    .await
                    .map_err(|e| classify("lastEpoch", e))?;
                if on_chain >= epoch.epoch {
                    // An earlier attempt got through before its receipt was seen.
                    return Ok(None);
                }
                let previous = U256::from(
                    dist.lastTotal()
                        .call()
                        .await
                        .map_err(|e| classify("lastTotal", e))?,
                );
                let total = U256::from(epoch.total_wei);
                let funding = total.checked_sub(previous).ok_or_else(|| {
                    StepError::Fatal(ChainError::Invalid(format!(
                        "epoch {} totals {} wei, less than the {previous} wei on chain",
                        epoch.epoch, epoch.total_wei
                    )))
                })?;
                let pending = dist
                    .postEpoch(U256::from(epoch.epoch), B256::from(epoch.root), total)
                    .value(funding)
                    .send()
                    .await
                    .map_err(|e| classify(&operation, e))?;
                let receipt = pending
                    .get_receipt()
                    .await
                    .map_err(|e| StepError::Transient(e.to_string()))?;
                check_receipt(&operation, &receipt)?;
                Ok(Some((receipt, funding)))
            })
            .await?;
        let (record, gas_used, funded) = match outcome {
            Some((receipt, funding)) => {
                let record = tx_record(&receipt);
                (record, receipt.gas_used, funding.to_string())
            }
            None => match d.find_epoch_tx(epoch.epoch).await? {
                Some(record) => (record, 0, "0".into()),
                None => continue,
            },
        };
        d.state.epochs.insert(epoch.epoch, record.clone());
        d.state.save(data_dir)?;
        posted.push(PostedEpoch {
            epoch: epoch.epoch,
            root: hex32(&epoch.root),
            total_wei: epoch.total_wei.to_string(),
            funded_wei: funded,
            tx: record.tx,
            gas_used,
        });
    }
    Ok(posted)
}

struct PendingBatch {
    sequence: u64,
    datanet_id: u32,
    records: u32,
    root: [u8; 32],
}

fn pending_batches(store: &Store, after: u64) -> Result<Vec<PendingBatch>> {
    let mut out = Vec::new();
    for (sequence, entry) in store.log_since(after)? {
        if let LogEntry::Ingest {
            datanet_id,
            record_ids,
            ..
        } = entry
        {
            let Some(root) = records_root(&record_ids) else {
                continue;
            };
            let records = u32::try_from(record_ids.len()).map_err(|_| {
                ChainError::Invalid(format!("batch {sequence} holds more than 2^32 records"))
            })?;
            out.push(PendingBatch {
                sequence,
                datanet_id,
                records,
                root,
            });
        }
    }
    Ok(out)
}

async fn sync_batches(
    store: &Store,
    data_dir: &Path,
    d: &mut Deployment,
) -> Result<(Vec<u32>, Vec<AnchoredBatch>)> {
    let chain_last = d.last_sequence().await?;
    let batches = pending_batches(store, chain_last)?;
    let mut registered = Vec::new();
    let mut anchored = Vec::new();
    for batch in batches {
        let datanet = store.datanet_by_id(batch.datanet_id)?;
        let operation = format!("register Datanet {}", batch.datanet_id);
        let registration = d
            .client
            .run(&operation, || async {
                let reg = d.registry();
                let info = reg
                    .datanets(batch.datanet_id)
                    .call()
                    .await
                    .map_err(|e| classify("datanets", e))?;
                if info.registered {
                    return Ok(None);
                }
                let owner = EvmAddress::from(datanet.owner.unwrap_or(Address([0; 20])).0);
                let metadata = B256::from(keccak256(datanet.name.as_bytes()));
                let receipt = reg
                    .registerDatanet(batch.datanet_id, owner, metadata)
                    .send()
                    .await
                    .map_err(|e| classify(&operation, e))?
                    .get_receipt()
                    .await
                    .map_err(|e| StepError::Transient(e.to_string()))?;
                check_receipt(&operation, &receipt)?;
                Ok(Some(receipt))
            })
            .await?;
        if let Some(receipt) = registration {
            d.state
                .datanets
                .insert(batch.datanet_id, tx_record(&receipt));
            d.state.save(data_dir)?;
            registered.push(batch.datanet_id);
        }

        let operation = format!("anchor batch {}", batch.sequence);
        let outcome = d
            .client
            .run(&operation, || async {
                let reg = d.registry();
                let last = reg
                    .lastSequence()
                    .call()
                    .await
                    .map_err(|e| classify("lastSequence", e))?;
                if last >= batch.sequence {
                    return Ok(None);
                }
                let receipt = reg
                    .anchorBatch(
                        batch.datanet_id,
                        batch.sequence,
                        batch.sequence,
                        B256::from(batch.root),
                        batch.records,
                    )
                    .send()
                    .await
                    .map_err(|e| classify(&operation, e))?
                    .get_receipt()
                    .await
                    .map_err(|e| StepError::Transient(e.to_string()))?;
                check_receipt(&operation, &receipt)?;
                Ok(Some(receipt))
            })
            .await?;
        if let Some(receipt) = outcome {
            let record = tx_record(&receipt);
            d.state.batches.insert(batch.sequence, record.clone());
            d.state.save(data_dir)?;
            anchored.push(AnchoredBatch {
                sequence: batch.sequence,
                datanet_id: batch.datanet_id,
                records: batch.records,
                records_root: hex32(&batch.root),
                tx: record.tx,
                gas_used: receipt.gas_used,
            });
        }
    }
    Ok((registered, anchored))
}

/// One epoch, locally and on chain.
#[derive(Clone, Debug, Serialize)]
pub struct EpochStatus {
    /// Its number.
    pub epoch: u64,
    /// The local root.
    pub local_root: String,
    /// The root on chain (None: not posted yet).
    pub chain_root: Option<String>,
    /// The total, in wei (decimal).
    pub total_wei: String,
    /// The transaction that posted it, when recorded.
    pub tx: Option<String>,
    /// "synced", "pending" (closed here, not on chain) or "diverged".
    pub state: &'static str,
}

/// Local and on-chain state side by side.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    /// Chain id (as recorded at deploy).
    pub chain_id: u64,
    /// The RPC endpoint used.
    pub rpc_url: String,
    /// AttributionDistributor address.
    pub distributor: String,
    /// ProvenanceRegistry address.
    pub registry: String,
    /// Closed epochs here.
    pub local_epochs: u64,
    /// The chain's last epoch.
    pub chain_last_epoch: u64,
    /// Every epoch, local and chain side.
    pub epochs: Vec<EpochStatus>,
    /// Ingest batches here.
    pub local_batches: u64,
    /// The chain's last anchored sequence number.
    pub chain_last_sequence: u64,
    /// Ingest batches not anchored yet.
    pub pending_batches: u64,
    /// The distributor's balance, in wei (decimal).
    pub distributor_balance_wei: String,
}

/// Local epochs and batches against the chain's (read only).
pub async fn status(
    store: &Store,
    data_dir: &Path,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
) -> Result<StatusReport> {
    let d = Deployment::open(data_dir, rpc_url, None, retry)?;
    let local = store.epochs()?;
    let (chain_last, _) = d.last_epoch().await?;
    let mut epochs = Vec::with_capacity(local.len());
    for epoch in &local {
        let chain_root = if epoch.epoch <= chain_last {
            Some(d.root(epoch.epoch).await?)
        } else {
            None
        };
        let state = match chain_root {
            None => "pending",
            Some(root) if root == epoch.root => "synced",
            Some(_) => "diverged",
        };
        epochs.push(EpochStatus {
            epoch: epoch.epoch,
            local_root: hex32(&epoch.root),
            chain_root: chain_root.as_ref().map(hex32),
            total_wei: epoch.total_wei.to_string(),
            tx: d.state.epochs.get(&epoch.epoch).map(|r| r.tx.clone()),
            state,
        });
    }
    let chain_last_sequence = d.last_sequence().await?;
    let local_batches = pending_batches(store, 0)?.len() as u64;
    let pending = pending_batches(store, chain_last_sequence)?.len() as u64;
    let balance = d
        .client
        .run("eth_getBalance", || async {
            d.client
                .provider
                .get_balance(d.distributor)
                .await
                .map_err(classify_rpc)
        })
        .await?;
    Ok(StatusReport {
        chain_id: d.state.chain_id,
        rpc_url: d.client.url.clone(),
        distributor: d.state.distributor.clone(),
        registry: d.state.registry.clone(),
        local_epochs: local.len() as u64,
        chain_last_epoch: chain_last,
        epochs,
        local_batches,
        chain_last_sequence,
        pending_batches: pending,
        distributor_balance_wei: balance.to_string(),
    })
}

/// What a claim paid.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimReport {
    /// The epoch whose root the proof was checked against (the chain's last).
    pub epoch: u64,
    /// Who was paid.
    pub account: String,
    /// Its cumulative balance in that epoch (decimal wei).
    pub cumulative_wei: String,
    /// What this claim paid (decimal wei).
    pub paid_wei: String,
    /// The proof submitted.
    pub proof: Vec<String>,
    /// The transaction.
    pub tx: String,
    /// Gas used.
    pub gas_used: u64,
}

/// Claims what `account` is owed by the chain's last epoch (its proof built from the local
/// epoch tree), paid to `account`, sent and paid for by `key`'s account.
pub async fn claim(
    store: &Store,
    data_dir: &Path,
    account: Address,
    key: &str,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
) -> Result<ClaimReport> {
    let d = Deployment::open(data_dir, rpc_url, Some(key), retry)?;
    let (epoch, _) = d.last_epoch().await?;
    if epoch == 0 {
        return Err(ChainError::Invalid(
            "no epoch is on chain yet: close one and run `provdb chain sync`".into(),
        ));
    }
    let tree = store.epoch_tree(epoch)?;
    let chain_root = d.root(epoch).await?;
    if chain_root != tree.root() {
        return Err(ChainError::Diverged {
            epoch,
            chain_root: hex32(&chain_root),
            local_root: hex32(&tree.root()),
        });
    }
    let (Some(cumulative), Some(proof)) = (tree.amount(&account), tree.proof(&account)) else {
        return Err(ChainError::Invalid(format!(
            "{account} has no balance in epoch {epoch}"
        )));
    };
    let evm_account = EvmAddress::from(account.0);
    let proof_b256: Vec<B256> = proof.iter().map(|p| B256::from(*p)).collect();
    let operation = format!("claim for {account}");
    let sent = std::cell::Cell::new(false);
    let receipt = d
        .client
        .run(&operation, || async {
            let dist = d.distributor();
            let already = dist
                .claimed(evm_account)
                .call()
                .await
                .map_err(|e| classify("claimed", e))?;
            if already >= U256::from(cumulative) && !sent.get() {
                return Err(StepError::Fatal(ChainError::Reverted {
                    operation: operation.clone(),
                    reason: format!(
                        "AlreadyClaimed {{ account: {evm_account}, claimed: {already} }}"
                    ),
                }));
            }
            let call = dist.claim(
                U256::from(epoch),
                evm_account,
                U256::from(cumulative),
                proof_b256.clone(),
            );
            let pending = call.send().await.map_err(|e| classify(&operation, e))?;
            sent.set(true);
            let receipt = pending
                .get_receipt()
                .await
                .map_err(|e| StepError::Transient(e.to_string()))?;
            check_receipt(&operation, &receipt)?;
            Ok((receipt, already))
        })
        .await?;
    let (receipt, already) = receipt;
    let paid = U256::from(cumulative) - already;
    Ok(ClaimReport {
        epoch,
        account: account.to_string(),
        cumulative_wei: cumulative.to_string(),
        paid_wei: paid.to_string(),
        proof: proof.iter().map(hex32).collect(),
        tx: format!("{}", receipt.transaction_hash),
        gas_used: receipt.gas_used,
    })
}
