//! The query crate's one error type.

/// Result alias for queries.
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// What can go wrong running a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query is invalid: syntax, unknown table or column, wrong types (user error).
    #[error("{0}")]
    Invalid(String),
    /// A limit was exceeded (time, memory): user error, the query can be narrowed.
    #[error("{0}")]
    Limit(String),
    /// Reading storage failed.
    #[error(transparent)]
    Storage(#[from] provdb_storage::StorageError),
    /// DataFusion failed while executing a valid plan: a bug or resource problem.
    #[error("query execution failed: {0}")]
    Execution(String),
}

impl QueryError {
    /// True for the caller's mistakes.
    pub fn is_user_error(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::Limit(_))
    }

    /// Sorts a DataFusion error: planning and SQL errors are the user's, resource limits are
    /// limits, storage errors keep their kind, the rest is execution.
    pub(crate) fn from_datafusion(error: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as E;
        let root = error.find_root();
        match root {
            E::SQL(..) => {
                let message = root.to_string();
                // The parser names a line and column, except where the query ended too early.
                if message.contains("found: EOF") {
                    Self::Invalid(format!("{message} (the query ends too early)"))
                } else {
                    Self::Invalid(message)
                }
            }
            E::Plan(_) | E::SchemaError(..) => Self::Invalid(root.to_string()),
            E::NotImplemented(m) => Self::Invalid(format!("not supported: {m}")),
            // The capped functions name the setting themselves; DataFusion's pool does not.
            E::ResourcesExhausted(m) if m.contains("QueryLimits::") => {
                Self::Limit(format!("query memory limit exceeded: {m}"))
            }
            E::ResourcesExhausted(m) => Self::Limit(format!(
                "query memory limit exceeded ({}): {m}",
                crate::limits::MEMORY_SETTING
            )),
            E::External(e) => {
                if let Some(query) = e.downcast_ref::<QueryError>() {
                    match query {
                        Self::Invalid(m) => Self::Invalid(m.clone()),
                        Self::Limit(m) => Self::Limit(m.clone()),
                        other => Self::Execution(other.to_string()),
                    }
                } else {
                    Self::Execution(e.to_string())
                }
            }
            other => Self::Execution(other.to_string()),
        }
    }
}
