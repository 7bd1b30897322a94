//! provdb-query: SQL and answers.
//!
//! Will own: the DataFusion session with a table provider per table (`datanets`, `records`,
//! `chunks`, per-Datanet tables, and the ledger's audit tables) with projection and filter
//! pushdown, the search table functions, access rules enforced below SQL, and the cited-answer
//! pipeline (retrieve, prompt with numbered sources, generate, verify citations). Depends on
//! storage, index and inference.
