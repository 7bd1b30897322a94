//! [`QueryEngine`]: builds a DataFusion session for one caller (bounded memory pool, the
//! caller's tables registered, the expanding functions capped: `limits`) and runs a query
//! within its limits (time, checked between batches as well as at every await; result bytes;
//! an optional row cap).

use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::error::Result as DfResult;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use provdb_storage::Store;

use crate::access::{Caller, readable_datanets};
use crate::error::{QueryError, Result};
use crate::limits::{QueryLimits, ResultBudget, TIME_SETTING, cap_functions};
use crate::search::{SearchFunction, Searcher};

/// A query's result.
#[derive(Clone, Debug)]
pub struct QueryOutput {
    /// Its schema.
    pub schema: SchemaRef,
    /// Its rows.
    pub batches: Vec<RecordBatch>,
    /// True when `max_rows` cut it short.
    pub truncated: bool,
}

impl QueryOutput {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Parses `sql`, applies provdb's rewrite, plans it, and refuses anything but a query: a
/// session is read-only (no DDL, no DML, no `SET`), so no statement reaches a file or a table
/// beyond the caller's.
async fn plan(context: &SessionContext, sql: &str) -> DfResult<DataFrame> {
    let state = context.state();
    let dialect = state.config().options().sql_parser.dialect;
    let mut statement = state.sql_to_statement(sql, &dialect)?;
    crate::rewrite::merge_search_record_ids(&mut statement);
    let plan = state.statement_to_plan(statement).await?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)?;
    context.execute_logical_plan(plan).await
}

/// To an unknown-table error, adds the nearest name among the session's tables and search
/// functions (only what the caller may read is a candidate).
fn suggest_table(context: &SessionContext, error: QueryError) -> QueryError {
    let QueryError::Invalid(message) = &error else {
        return error;
    };
    let Some(rest) = message
        .split("table '")
        .nth(1)
        .or_else(|| message.split("table function '").nth(1))
    else {
        return error;
    };
    let Some(qualified) = rest
        .split("' not found")
        .next()
        .filter(|_| rest.contains("' not found"))
    else {
        return error;
    };
    let wanted = qualified
        .rsplit('.')
        .next()
        .unwrap_or(qualified)
        .to_ascii_lowercase();
    let mut names: Vec<String> = crate::search::FUNCTIONS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    if let Some(schema) = context
        .catalog("datafusion")
        .and_then(|c| c.schema("public"))
    {
        names.extend(schema.table_names());
    }
    let nearest = names
        .iter()
        .map(|name| (strsim::levenshtein(&wanted, name), name))
        .min();
    match nearest {
        Some((distance, name)) if distance <= (wanted.len() / 3).max(2) => {
            QueryError::Invalid(format!("{message} (did you mean '{name}'?)"))
        }
        _ => error,
    }
}

/// Runs SQL over a store.
#[derive(Clone)]
pub struct QueryEngine {
    store: Arc<Store>,
    limits: QueryLimits,
    searcher: Option<Arc<dyn Searcher>>,
}

impl QueryEngine {
    /// An engine over `store` with `limits`.
    pub fn new(store: Arc<Store>, limits: QueryLimits) -> Self {
        Self {
            store,
            limits,
            searcher: None,
        }
    }

    /// Lets the search table functions run through `searcher`.
    pub fn with_searcher(mut self, searcher: Arc<dyn Searcher>) -> Self {
        self.searcher = Some(searcher);
        self
    }

    /// The limits.
    pub fn limits(&self) -> QueryLimits {
        self.limits
    }

    /// A session holding exactly the tables `caller` may read.
    pub fn context(&self, caller: Caller) -> Result<SessionContext> {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_information_schema(false);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.memory_bytes, 1.0)
            .build_arc()
            .map_err(QueryError::from_datafusion)?;
        let context = SessionContext::new_with_config_rt(config, runtime);
        cap_functions(&context, self.limits.memory_bytes);
        let readable = Arc::new(readable_datanets(&self.store, &caller)?);
        crate::tables::register_all(&context, &self.store, &readable, caller)
            .map_err(QueryError::from_datafusion)?;
        for (name, mode) in crate::search::FUNCTIONS {
            let function =
                SearchFunction::new(name, mode, &readable, caller, self.searcher.clone());
            context.register_udtf(name, Arc::new(function));
        }
        Ok(context)
    }

    /// Plans `sql` for `caller` and starts it: a stream of batches.
    pub async fn stream(&self, sql: &str, caller: Caller) -> Result<SendableRecordBatchStream> {
        Ok(self.start(sql, caller).await?.1)
    }

    /// The session and the started stream of `sql` for `caller`.
    async fn start(
        &self,
        sql: &str,
        caller: Caller,
    ) -> Result<(SessionContext, SendableRecordBatchStream)> {
        let context = self.context(caller)?;
        let frame = plan(&context, sql)
            .await
            .map_err(|e| suggest_table(&context, QueryError::from_datafusion(e)))?;
        let stream = frame
            .execute_stream()
            .await
            .map_err(QueryError::from_datafusion)?;
        Ok((context, stream))
    }

    /// Runs `sql` for `caller` to the end (or `max_rows`), within the limits. The timeout
    /// fires at any await of the query and is checked again after every batch; dropping the
    /// stream cancels what still runs.
    pub async fn run(&self, sql: &str, caller: Caller) -> Result<QueryOutput> {
        let started = Instant::now();
        let timed_out = || {
            QueryError::Limit(format!(
                "the query timed out after {:.1} s, its time limit, and was cancelled \
                 ({TIME_SETTING})",
                self.limits.timeout.as_secs_f64()
            ))
        };
        let work = async {
            let (context, mut stream) = self.start(sql, caller).await?;
            let schema = stream.schema();
            let mut budget = ResultBudget::new(
                &context.runtime_env().memory_pool,
                self.limits.max_result_bytes,
            );
            let mut batches = Vec::new();
            let mut rows = 0usize;
            let mut truncated = false;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(QueryError::from_datafusion)?;
                if started.elapsed() > self.limits.timeout {
                    return Err(timed_out());
                }
                let batch = match self.limits.max_rows {
                    Some(max) if rows + batch.num_rows() > max => {
                        truncated = true;
                        batch.slice(0, max - rows)
                    }
                    _ => batch,
                };
                budget.add(&batch)?;
                rows += batch.num_rows();
                batches.push(batch);
                if truncated {
                    break;
                }
            }
            Ok(QueryOutput {
                schema,
                batches,
                truncated,
            })
        };
        tokio::time::timeout(self.limits.timeout, work)
            .await
            .map_err(|_| timed_out())?
    }
}
