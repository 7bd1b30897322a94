//! One module per command group.

pub(crate) mod datanet;
pub(crate) mod demo;
pub(crate) mod embed;
pub(crate) mod generate;
pub(crate) mod ingest;
pub(crate) mod records;
pub(crate) mod sql;

use std::path::Path;

/// `provdb init`.
pub(crate) fn init(data: &Path) -> anyhow::Result<()> {
    provdb::Db::init(data)?;
    println!("initialised provdb database in {}", data.display());
    Ok(())
}
