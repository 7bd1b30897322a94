//! `provdb datanet create|list|show`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use provdb::storage::{ChunkingConfig, Visibility};
use provdb::{Address, Datanet, DatanetInfo, Db, Status};

use crate::output::{print_json, print_table};

/// `provdb datanet`.
#[derive(Debug, Subcommand)]
pub(crate) enum DatanetCommand {
    /// Create a Datanet.
    Create(DatanetCreateArgs),
    /// List Datanets.
    List,
    /// Show one Datanet with its counters.
    Show {
        /// Datanet name.
        name: String,
    },
}

/// `provdb datanet create`.
#[derive(Debug, Args)]
pub(crate) struct DatanetCreateArgs {
    /// Name: a letter, then letters, digits, `_` or `-`.
    name: String,
    /// The column that is chunked and indexed.
    #[arg(long, default_value = "text")]
    text_column: String,
    /// Default license of the records.
    #[arg(long, default_value = "unspecified")]
    license: String,
    /// Description.
    #[arg(long, default_value = "")]
    description: String,
    /// Typed schema, JSON: {"columns":[{"name":"title","type":"string","required":true},...]}.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Refuse records without a valid EIP-712 signature by their contributor.
    #[arg(long)]
    require_signatures: bool,
    /// The chain id of the EIP-712 domain its records are signed in.
    #[arg(long, default_value_t = provdb::storage::DEFAULT_CHAIN_ID)]
    chain_id: u64,
    /// Only the owner and grantees may read it.
    #[arg(long)]
    private: bool,
    /// Owner (curator) address.
    #[arg(long)]
    owner: Option<Address>,
    /// New records start `pending` until a curator approves them.
    #[arg(long)]
    review: bool,
    /// Chunk size in bytes.
    #[arg(long, default_value_t = 1000)]
    chunk_size: u32,
    /// Bytes shared by consecutive chunks.
    #[arg(long, default_value_t = 150)]
    chunk_overlap: u32,
}

pub(crate) fn run(data: &Path, json: bool, command: DatanetCommand) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    match command {
        DatanetCommand::Create(args) => create(&db, json, args),
        DatanetCommand::List => {
            let datanets = db.datanets()?;
            if json {
                return print_json(&serde_json::json!({ "datanets": datanets }));
            }
            let rows: Vec<Vec<String>> = datanets
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.stats.records.to_string(),
                        d.stats.chunks.to_string(),
                        d.stats.contributors.to_string(),
                        d.visibility.to_string(),
                    ]
                })
                .collect();
            print_table(
                &["name", "records", "chunks", "contributors", "visibility"],
                &rows,
            );
            Ok(())
        }
        DatanetCommand::Show { name } => {
            let info = db.datanet_info(&name)?;
            if json {
                print_json(&info)
            } else {
                print_info(&info)
            }
        }
    }
}

fn create(db: &Db, json: bool, args: DatanetCreateArgs) -> anyhow::Result<()> {
    let schema = match &args.schema {
        Some(path) => Some(provdb::schema::parse_schema(&fs_err::read_to_string(
            path,
        )?)?),
        None => None,
    };
    let spec = Datanet {
        name: args.name,
        description: args.description,
        license: args.license,
        text_column: args.text_column,
        schema,
        require_signatures: args.require_signatures,
        signatures: provdb::SignaturePolicy {
            chain_id: args.chain_id,
            accepts_eip191: false,
        },
        visibility: if args.private {
            Visibility::Private
        } else {
            Visibility::Public
        },
        owner: args.owner,
        initial_status: if args.review {
            Status::Pending
        } else {
            Status::Approved
        },
        // Near-duplicate detection at ingest is not built yet: the default (allow).
        near_duplicates: provdb::storage::NearDuplicatePolicy::default(),
        id: 0,
        created_at_ms: 0,
        chunking: ChunkingConfig {
            size_bytes: args.chunk_size,
            overlap_bytes: args.chunk_overlap,
        },
    };
    let info = db.create_datanet(spec)?;
    if json {
        print_json(&info)
    } else {
        println!("created datanet '{}' (id {})", info.name, info.id);
        Ok(())
    }
}

/// Prints a Datanet's fields and counters, one per line.
pub(crate) fn print_info(info: &DatanetInfo) -> anyhow::Result<()> {
    let owner = info.owner.clone().unwrap_or_else(|| "-".into());
    let rows = [
        ("name", info.name.clone()),
        ("description", info.description.clone()),
        ("license", info.license.clone()),
        ("text column", info.text_column.clone()),
        (
            "signatures",
            format!(
                "{} ({} on chain {})",
                if info.require_signatures {
                    "required"
                } else {
                    "optional"
                },
                info.signature_schemes.join(", "),
                info.chain_id
            ),
        ),
        ("visibility", info.visibility.to_string()),
        ("owner", owner),
        ("records", info.stats.records.to_string()),
        ("chunks", info.stats.chunks.to_string()),
        ("contributors", info.stats.contributors.to_string()),
        ("tombstones", info.stats.tombstones.to_string()),
        ("content bytes", info.stats.content_bytes.to_string()),
        ("last sequence", info.stats.last_sequence.to_string()),
    ];
    for (key, value) in rows {
        println!("{key:<14} {value}");
    }
    Ok(())
}
