//! One rewrite of the parsed SQL before planning: a search function joined to `chunks`
//! `USING (chunk_id)` is joined `USING (chunk_id, record_id)`.
//!
//! Both sides carry `record_id`, and a chunk id determines its record, so the two columns are
//! equal on every joined row and the rewrite changes no result. Without it, the natural next
//! step, `... JOIN records r USING (record_id)`, is ambiguous (two `record_id` columns on the
//! left); with it, `record_id` is one merged column, as a reader of the query expects.

use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Ident, JoinConstraint, JoinOperator, ObjectName, Query, SetExpr, TableFactor, VisitMut,
    VisitorMut,
};

/// Applies the rewrite everywhere in `statement` (subqueries, `EXPLAIN` included).
pub(crate) fn merge_search_record_ids(statement: &mut DfStatement) {
    match statement {
        DfStatement::Statement(inner) => {
            let _ = inner.visit(&mut MergeRecordIds);
        }
        DfStatement::Explain(explain) => merge_search_record_ids(&mut explain.statement),
        _ => {}
    }
}

struct MergeRecordIds;

impl VisitorMut for MergeRecordIds {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        rewrite_set_expr(&mut query.body);
        ControlFlow::Continue(())
    }
}

fn rewrite_set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for from in &mut select.from {
                let mut has_search = is_search(&from.relation);
                let mut has_chunks = is_chunks(&from.relation);
                for join in &mut from.joins {
                    let joins_pair = (has_search && is_chunks(&join.relation))
                        || (has_chunks && is_search(&join.relation));
                    if joins_pair && let Some(columns) = using_columns(&mut join.join_operator) {
                        add_record_id(columns);
                    }
                    has_search |= is_search(&join.relation);
                    has_chunks |= is_chunks(&join.relation);
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_set_expr(left);
            rewrite_set_expr(right);
        }
        _ => {}
    }
}

fn last_name(name: &ObjectName) -> Option<String> {
    name.0
        .last()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.to_ascii_lowercase())
}

fn is_search(factor: &TableFactor) -> bool {
    match factor {
        TableFactor::Table {
            name,
            args: Some(_),
            ..
        } => last_name(name).is_some_and(|n| crate::search::FUNCTIONS.iter().any(|(f, _)| *f == n)),
        _ => false,
    }
}

fn is_chunks(factor: &TableFactor) -> bool {
    match factor {
        TableFactor::Table {
            name, args: None, ..
        } => last_name(name).is_some_and(|n| n == "chunks"),
        _ => false,
    }
}

/// The `USING` list of a join, if it has one.
fn using_columns(operator: &mut JoinOperator) -> Option<&mut Vec<ObjectName>> {
    let constraint = match operator {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c) => c,
        _ => return None,
    };
    match constraint {
        JoinConstraint::Using(columns) => Some(columns),
        _ => None,
    }
}

fn add_record_id(columns: &mut Vec<ObjectName>) {
    let names: Vec<String> = columns.iter().filter_map(last_name).collect();
    if names.iter().any(|n| n == "chunk_id") && !names.iter().any(|n| n == "record_id") {
        columns.push(ObjectName::from(vec![Ident::new("record_id")]));
    }
}
