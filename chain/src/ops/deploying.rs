//! Deploying the two contracts, and [`Deployment`]: an open connection to a deployed pair
//! with its chain-state file, which every other command uses. The distributor's asset (ETH,
//! or an ERC-20 whose address must hold a contract) is chosen here, once.

use std::path::Path;

use alloy::primitives::{Address as EvmAddress, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use provdb_storage::{Epoch, hex32};
use serde::Serialize;

use crate::bindings::{AttributionDistributor, ProvenanceRegistry};
use crate::client::{Client, RetryPolicy, classify, classify_rpc, send_and_confirm};
use crate::error::{ChainError, Result};
use crate::state::{ChainState, TxRecord};

pub(crate) fn parse_address(text: &str, what: &str) -> Result<EvmAddress> {
    text.parse()
        .map_err(|_| ChainError::Invalid(format!("invalid {what} address '{text}'")))
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
    /// The ERC-20 the distributor takes and pays (None: ETH).
    pub token: Option<String>,
    /// The block of the deployment.
    pub deploy_block: u64,
    /// Gas used by the two deployments.
    pub gas_used: u64,
}

/// Deploys both contracts from `key`'s account through `rpc_url` and records them in
/// `data_dir/chain.json`; the distributor takes and pays ETH, or the ERC-20 at `token`.
/// Refuses to replace a recorded deployment unless `force`.
pub async fn deploy(
    data_dir: &Path,
    rpc_url: &str,
    key: &str,
    token: Option<&str>,
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
    let asset = match token {
        Some(text) => {
            let address = parse_address(text, "token")?;
            if address == EvmAddress::ZERO {
                return Err(ChainError::Invalid(
                    "the token address is zero; leave out --token for ETH".into(),
                ));
            }
            let code = client
                .run("eth_getCode", || async {
                    client
                        .provider
                        .get_code_at(address)
                        .await
                        .map_err(classify_rpc)
                })
                .await?;
            if code.is_empty() {
                return Err(ChainError::Invalid(format!(
                    "no contract at the token address {address} on chain {chain_id}"
                )));
            }
            address
        }
        None => EvmAddress::ZERO,
    };
    client.retry.attempts = 1;
    // Deployments are not retried: a retry after a lost receipt would deploy twice. One attempt
    // each (still bounded by the attempt timeout); a failure leaves no state file, so deploy
    // can simply be rerun.
    let distributor = client
        .run("deploy AttributionDistributor", || {
            send_and_confirm(
                "deploy AttributionDistributor",
                AttributionDistributor::deploy_builder(&client.provider, asset),
            )
        })
        .await?;
    let registry = client
        .run("deploy ProvenanceRegistry", || {
            send_and_confirm(
                "deploy ProvenanceRegistry",
                ProvenanceRegistry::deploy_builder(&client.provider),
            )
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
        token: (asset != EvmAddress::ZERO).then(|| format!("{asset}")),
        deploy_block: distributor.block_number.unwrap_or(0),
        epochs: Default::default(),
        batches: Default::default(),
        datanets: Default::default(),
        adapters: Default::default(),
        deposits_scanned_block: None,
        transfers_scanned_block: None,
    };
    state.save(data_dir)?;
    Ok(DeployReport {
        chain_id,
        operator: state.operator,
        distributor: state.distributor,
        registry: state.registry,
        token: state.token,
        deploy_block: state.deploy_block,
        gas_used: distributor.gas_used + registry.gas_used,
    })
}

/// The deployed contracts, bound to a client.
pub(crate) struct Deployment {
    pub(crate) state: ChainState,
    pub(crate) client: Client,
    distributor: AttributionDistributor::AttributionDistributorInstance<DynProvider>,
    registry: ProvenanceRegistry::ProvenanceRegistryInstance<DynProvider>,
}

impl Deployment {
    pub(crate) fn open(
        data_dir: &Path,
        rpc_url: Option<&str>,
        key: Option<&str>,
        retry: RetryPolicy,
    ) -> Result<Self> {
        let state = ChainState::load(data_dir)?;
        let url = rpc_url.unwrap_or(&state.rpc_url).to_string();
        let client = Client::connect(&url, key, retry)?;
        let distributor = AttributionDistributor::new(
            parse_address(&state.distributor, "distributor")?,
            client.provider.clone(),
        );
        let registry = ProvenanceRegistry::new(
            parse_address(&state.registry, "registry")?,
            client.provider.clone(),
        );
        Ok(Self {
            state,
            client,
            distributor,
            registry,
        })
    }

    /// The AttributionDistributor (its calls borrow the deployment's provider).
    pub(crate) fn distributor(
        &self,
    ) -> &AttributionDistributor::AttributionDistributorInstance<DynProvider> {
        &self.distributor
    }

    /// The ProvenanceRegistry.
    pub(crate) fn registry(&self) -> &ProvenanceRegistry::ProvenanceRegistryInstance<DynProvider> {
        &self.registry
    }

    pub(crate) async fn last_epoch(&self) -> Result<(u64, u128)> {
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
                Ok((epoch, total))
            })
            .await
    }

    pub(crate) async fn root(&self, epoch: u64) -> Result<[u8; 32]> {
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

    pub(crate) async fn ledger_head(&self, epoch: u64) -> Result<[u8; 32]> {
        self.client
            .run("read ledgerHeads", || async {
                let head = self
                    .distributor()
                    .ledgerHeads(U256::from(epoch))
                    .call()
                    .await
                    .map_err(|e| classify("ledgerHeads", e))?;
                Ok(head.0)
            })
            .await
    }

    pub(crate) async fn last_sequence(&self) -> Result<u64> {
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
    pub(crate) async fn find_epoch_tx(&self, epoch: u64) -> Result<Option<TxRecord>> {
        let filter = Filter::new()
            .address(*self.distributor.address())
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
    pub(crate) async fn check_epochs(&self, local: &[Epoch]) -> Result<(u64, u128)> {
        let (chain_last, chain_total) = self.last_epoch().await?;
        if chain_last > local.len() as u64 {
            return Err(ChainError::Diverged {
                epoch: chain_last,
                what: "root",
                chain: hex32(&self.root(chain_last).await?),
                local: format!("nothing (only {} epochs are closed here)", local.len()),
            });
        }
        for epoch in local.iter().take(chain_last as usize) {
            let chain_root = self.root(epoch.epoch).await?;
            if chain_root != epoch.root {
                return Err(ChainError::Diverged {
                    epoch: epoch.epoch,
                    what: "root",
                    chain: hex32(&chain_root),
                    local: hex32(&epoch.root),
                });
            }
            // The root alone does not show a ledger rewritten to the same balances.
            let chain_head = self.ledger_head(epoch.epoch).await?;
            if chain_head != epoch.ledger_head {
                return Err(ChainError::Diverged {
                    epoch: epoch.epoch,
                    what: "ledger head",
                    chain: hex32(&chain_head),
                    local: hex32(&epoch.ledger_head),
                });
            }
        }
        Ok((chain_last, chain_total))
    }
}
