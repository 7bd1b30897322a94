//! `provdb key create|list|revoke`: API keys of `provdb serve`.

use std::path::Path;

use clap::{Subcommand, ValueEnum};
use provdb::{Address, Db, KeyRole};
use serde_json::{Value, json};

use crate::output::{print_json, print_table};
use crate::views::key_view;

/// `provdb key`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Make an API key for an address; it is printed once and stored hashed.
    Create {
        /// The address the key acts as.
        #[arg(long)]
        address: Address,
        /// What the key may do.
        #[arg(long, value_enum, default_value_t = RoleArg::Reader)]
        role: RoleArg,
        /// A note for people.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List keys (ids, addresses, roles; never secrets).
    List,
    /// Revoke a key by its id.
    Revoke {
        /// The key id (16 hex digits, the part after `pdb_`).
        id: String,
    },
}

/// Roles of API keys (`--role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    /// Reads what its address may read; searches, queries, asks.
    Reader,
    /// A reader that may also upload records as its own address.
    Contributor,
    /// A contributor that may also create Datanets (and owns them).
    Curator,
    /// Everything, on every Datanet.
    Admin,
}

impl From<RoleArg> for KeyRole {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Reader => Self::Reader,
            RoleArg::Contributor => Self::Contributor,
            RoleArg::Curator => Self::Curator,
            RoleArg::Admin => Self::Admin,
        }
    }
}

pub(crate) fn run(data: &Path, json: bool, command: KeyCommand) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    match command {
        KeyCommand::Create {
            address,
            role,
            label,
        } => {
            let (key, token) = db.create_api_key(address, role.into(), &label)?;
            if json {
                return print_json(&json!({
                    "key": token,
                    "key_id": hex::encode(key.key_id),
                    "address": key.address.to_string(),
                    "role": key.role.as_str(),
                }));
            }
            println!("{token}");
            eprintln!(
                "key {} for {} ({}): shown once, stored hashed",
                hex::encode(key.key_id),
                key.address,
                key.role.as_str()
            );
            Ok(())
        }
        KeyCommand::List => {
            let keys: Vec<Value> = db.api_keys()?.iter().map(key_view).collect();
            if json {
                return print_json(&json!({ "keys": keys }));
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    ["key_id", "address", "role", "label"]
                        .iter()
                        .map(|f| k[f].as_str().unwrap_or_default().to_string())
                        .chain([if k["revoked_at"].is_null() {
                            "active".into()
                        } else {
                            "revoked".into()
                        }])
                        .collect()
                })
                .collect();
            print_table(&["key_id", "address", "role", "label", "state"], &rows);
            Ok(())
        }
        KeyCommand::Revoke { id } => {
            let key = db.revoke_api_key(&id)?;
            println!("revoked key {} of {}", hex::encode(key.key_id), key.address);
            Ok(())
        }
    }
}
