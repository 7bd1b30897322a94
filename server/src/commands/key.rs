//! `provdb key create|list|revoke`: API keys of `provdb serve`.

use std::path::Path;

use provdb::{Address, ApiKey, Db, KeyRole};
use serde_json::{Value, json};

use crate::cli::KeyCommand;
use crate::output::{parse_arg, print_json, print_table};

/// A key as listed (CLI and HTTP): never its secret or the secret's hash.
pub(crate) fn key_view(key: &ApiKey) -> Value {
    json!({
        "key_id": hex::encode(key.key_id),
        "address": key.address.to_string(),
        "role": key.role.as_str(),
        "label": key.label,
        "created_at": key.created_at_ms,
        "revoked_at": key.revoked_at_ms,
    })
}

pub(crate) fn run(data: &Path, command: KeyCommand) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    match command {
        KeyCommand::Create {
            address,
            role,
            label,
            json,
        } => {
            let address: Address = parse_arg(&address, "--address")?;
            let role: KeyRole = parse_arg(&role, "--role")?;
            let (key, token) = db.create_api_key(address, role, &label)?;
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
        KeyCommand::List { json } => {
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
