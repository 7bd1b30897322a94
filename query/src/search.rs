//! The search table functions `bm25_search(datanet, text, k)`, `vector_search(datanet, text,
//! k)` and `hybrid_search(datanet, text, k [, rrf_k])`: one row per hit with `chunk_id`,
//! `record_id`, `score`, `rank` and each retriever's own score and rank, so results join with
//! `chunks` and `records`. `hybrid_search` fuses with the index's default (weighted sum)
//! unless `rrf_k` is given, which selects reciprocal rank fusion with that constant.
//!
//! The search itself belongs to whoever holds the indexes (the embedded database), reached
//! through [`Searcher`]. Invariants: arguments are checked when the query is planned (literal
//! types, a Datanet the caller may read: an unreadable Datanet is reported exactly like one that
//! does not exist); the search runs when the scan executes, so `EXPLAIN` never searches.

use std::fmt;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::ScalarValue;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use provdb_index::{Fusion, IndexHit, Mode, RetrieverScore, SearchOptions, Weights};
use provdb_storage::Datanet;

use crate::access::Caller;
use crate::error::{QueryError, Result};
use crate::filters::ScanFilter;
use crate::scan::{BatchSource, LazyScanExec};

/// Runs a search over one Datanet's index; implemented by the embedded database.
pub trait Searcher: Send + Sync {
    /// The top hits of `text` in Datanet `datanet` for `caller`. The session has already checked
    /// that the caller may read the Datanet.
    fn search(
        &self,
        datanet: &str,
        text: &str,
        options: &SearchOptions,
        caller: Caller,
    ) -> Result<Vec<IndexHit>>;
}

/// The table functions, by name, with their retrievers.
pub(crate) const FUNCTIONS: [(&str, Mode); 3] = [
    ("bm25_search", Mode::Bm25),
    ("vector_search", Mode::Vector),
    ("hybrid_search", Mode::Hybrid),
];

/// The rows every search function returns.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("chunk_id", DataType::UInt64, false),
        Field::new("record_id", DataType::Utf8, false),
        Field::new("score", DataType::Float32, false),
        Field::new("rank", DataType::UInt32, false),
        Field::new("bm25_score", DataType::Float32, true),
        Field::new("bm25_rank", DataType::UInt32, true),
        Field::new("vector_score", DataType::Float32, true),
        Field::new("vector_rank", DataType::UInt32, true),
    ]))
}

/// One search table function of one session.
pub(crate) struct SearchFunction {
    name: &'static str,
    mode: Mode,
    readable: Arc<Vec<Datanet>>,
    caller: Caller,
    searcher: Option<Arc<dyn Searcher>>,
}

impl SearchFunction {
    pub(crate) fn new(
        name: &'static str,
        mode: Mode,
        readable: &Arc<Vec<Datanet>>,
        caller: Caller,
        searcher: Option<Arc<dyn Searcher>>,
    ) -> Self {
        Self {
            name,
            mode,
            readable: Arc::clone(readable),
            caller,
            searcher,
        }
    }

    fn usage(&self) -> String {
        match self.mode {
            Mode::Hybrid => format!("{}(datanet, text, k [, rrf_k])", self.name),
            _ => format!("{}(datanet, text, k)", self.name),
        }
    }

    fn invalid(&self, message: String) -> DataFusionError {
        DataFusionError::Plan(format!("{message}; usage: {}", self.usage()))
    }

    /// Argument `index` (0-based) as text.
    fn text_arg(&self, args: &[Expr], index: usize, what: &str) -> DfResult<String> {
        match literal(&args[index]) {
            Some(ScalarValue::Utf8(Some(s)))
            | Some(ScalarValue::LargeUtf8(Some(s)))
            | Some(ScalarValue::Utf8View(Some(s))) => Ok(s.clone()),
            other => Err(self.wrong_type(index, what, "a string", other)),
        }
    }

    /// Argument `index` (0-based) as a number.
    fn number_arg(&self, args: &[Expr], index: usize, what: &str) -> DfResult<f64> {
        let value = literal(&args[index]);
        let number = match value {
            Some(ScalarValue::Int64(Some(n))) => Some(*n as f64),
            Some(ScalarValue::Int32(Some(n))) => Some(f64::from(*n)),
            Some(ScalarValue::UInt64(Some(n))) => Some(*n as f64),
            Some(ScalarValue::Float64(Some(n))) => Some(*n),
            _ => None,
        };
        number.ok_or_else(|| self.wrong_type(index, what, "a number", value))
    }

    fn wrong_type(
        &self,
        index: usize,
        what: &str,
        wanted: &str,
        got: Option<&ScalarValue>,
    ) -> DataFusionError {
        let got = match got {
            Some(v) if v.is_null() => "NULL".to_string(),
            Some(v) => format!("{} {v}", v.data_type()),
            None => "an expression (only literals are accepted)".to_string(),
        };
        self.invalid(format!(
            "{}: argument {} ({what}) must be {wanted}, got {got}",
            self.name,
            index + 1
        ))
    }
}

fn literal(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value),
        Expr::Cast(cast) => literal(&cast.expr),
        _ => None,
    }
}

impl fmt::Debug for SearchFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchFunction")
            .field("name", &self.name)
            .finish()
    }
}

impl TableFunctionImpl for SearchFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let args = args.exprs();
        let most = if self.mode == Mode::Hybrid { 4 } else { 3 };
        if args.len() < 3 || args.len() > most {
            return Err(self.invalid(format!(
                "{} takes {} arguments, got {}",
                self.name,
                if most == 4 { "3 or 4" } else { "3" },
                args.len()
            )));
        }
        let datanet = self.text_arg(args, 0, "datanet")?;
        let text = self.text_arg(args, 1, "text")?;
        let k = self.number_arg(args, 2, "k")?;
        if k.fract() != 0.0 || !(1.0..=provdb_index::MAX_K as f64).contains(&k) {
            return Err(self.invalid(format!(
                "{}: argument 3 (k) must be an integer in 1..={}, got {k}",
                self.name,
                provdb_index::MAX_K
            )));
        }
        let mut options = SearchOptions {
            k: k as usize,
            mode: self.mode,
            ..SearchOptions::default()
        };
        if args.len() == 4 {
            let rrf_k = self.number_arg(args, 3, "rrf_k")?;
            if !(rrf_k.is_finite() && rrf_k > 0.0) {
                return Err(self.invalid(format!(
                    "{}: argument 4 (rrf_k) must be positive, got {rrf_k}",
                    self.name
                )));
            }
            options.fusion = Fusion::Rrf;
            options.rrf_k = rrf_k as f32;
            options.weights = Weights::default_for(Fusion::Rrf);
        }
        if !self.readable.iter().any(|d| d.name == datanet) {
            return Err(DataFusionError::Plan(format!(
                "{}: unknown datanet '{datanet}'",
                self.name
            )));
        }
        let searcher = self.searcher.clone().ok_or_else(|| {
            DataFusionError::Plan(format!(
                "{}: search is not available in this session (no index attached)",
                self.name
            ))
        })?;
        Ok(Arc::new(SearchTable {
            request: Arc::new(SearchRequest {
                function: self.name,
                datanet,
                text,
                options,
                caller: self.caller,
                searcher,
            }),
            schema: schema(),
        }))
    }
}

/// One call of a search function, as planned.
struct SearchRequest {
    function: &'static str,
    datanet: String,
    text: String,
    options: SearchOptions,
    caller: Caller,
    searcher: Arc<dyn Searcher>,
}

/// The table a search function call stands for.
struct SearchTable {
    request: Arc<SearchRequest>,
    schema: SchemaRef,
}

impl fmt::Debug for SearchTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchTable")
            .field("function", &self.request.function)
            .field("datanet", &self.request.datanet)
            .finish()
    }
}

#[async_trait]
impl TableProvider for SearchTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = crate::tables::projected(&self.schema, projection)?;
        let request = &self.request;
        let name = format!(
            "{}('{}', k={})",
            request.function, request.datanet, request.options.k
        );
        let label = crate::tables::label(&name, &schema, &ScanFilter::default(), limit);
        let source = SearchSource {
            request: Arc::clone(request),
            projection: projection.cloned(),
            limit,
        };
        Ok(Arc::new(LazyScanExec::new(Arc::new(source), schema, label)))
    }
}

/// One execution of a search call.
struct SearchSource {
    request: Arc<SearchRequest>,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
}

impl fmt::Debug for SearchSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchSource")
            .field("function", &self.request.function)
            .finish()
    }
}

impl BatchSource for SearchSource {
    fn produce(&self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> Result<()> {
        let request = &self.request;
        let mut hits = request.searcher.search(
            &request.datanet,
            &request.text,
            &request.options,
            request.caller,
        )?;
        if let Some(limit) = self.limit {
            hits.truncate(limit);
        }
        let batch = hits_to_batch(&hits)?;
        let batch = crate::tables::project_batch(batch, self.projection.as_deref())?;
        emit(batch);
        Ok(())
    }
}

/// The rows of `hits`, ranked from 1 in their order.
fn hits_to_batch(hits: &[IndexHit]) -> Result<RecordBatch> {
    let part = |f: fn(&IndexHit) -> Option<RetrieverScore>| -> (ArrayRef, ArrayRef) {
        let scores: Float32Array = hits.iter().map(|h| f(h).map(|s| s.score)).collect();
        let ranks: UInt32Array = hits.iter().map(|h| f(h).map(|s| s.rank)).collect();
        (Arc::new(scores), Arc::new(ranks))
    };
    let (bm25_scores, bm25_ranks) = part(|h| h.bm25);
    let (vector_scores, vector_ranks) = part(|h| h.vector);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(
            hits.iter().map(|h| h.chunk_id),
        )),
        Arc::new(
            hits.iter()
                .map(|h| Some(h.record_id.to_string()))
                .collect::<StringArray>(),
        ),
        Arc::new(Float32Array::from_iter_values(hits.iter().map(|h| h.score))),
        Arc::new(UInt32Array::from_iter_values(1..=hits.len() as u32)),
        bm25_scores,
        bm25_ranks,
        vector_scores,
        vector_ranks,
    ];
    RecordBatch::try_new(schema(), columns)
        .map_err(|e| QueryError::Execution(format!("search results: {e}")))
}
