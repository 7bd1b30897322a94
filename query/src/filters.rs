//! Filters a scan applies itself: `column = literal`, `column IN (literals)`, and for integer
//! columns `<`, `<=`, `>`, `>=` and `BETWEEN`, on the columns a table declares pushable. A
//! filter in any other shape is left to DataFusion (`Unsupported`); a pushable one is applied
//! exactly by the scan (`Exact`), so DataFusion does not re-check it and `LIMIT` can stop the
//! scan early. Conjunctions arrive split by DataFusion, so a filter here is one predicate.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::scalar::ScalarValue;

/// One column's constraint.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Constraint {
    /// The value is one of these (strings compare exactly).
    OneOf(BTreeSet<String>),
    /// An inclusive integer range.
    Range(Option<i64>, Option<i64>),
}

/// All constraints of a scan, by column name; a row passes when it meets every one.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ScanFilter {
    by_column: BTreeMap<String, Vec<Constraint>>,
}

fn literal_string(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(value, _) => match value {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
            other => literal_int(other).map(|i| i.to_string()),
        },
        _ => None,
    }
}

fn literal_int(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int8(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int16(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::UInt8(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt16(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
        _ => None,
    }
}

fn expr_int(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(value, _) => literal_int(value),
        _ => None,
    }
}

fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(column) => Some(column.name.as_str()),
        _ => None,
    }
}

/// Which columns a table can filter, and how.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pushable<'a> {
    /// Columns compared by equality / IN (as strings; integers are compared as their decimal).
    pub(crate) equality: &'a [&'a str],
    /// Integer columns that also take ranges.
    pub(crate) ranges: &'a [&'a str],
}

impl Pushable<'_> {
    /// The constraint `expr` puts on one pushable column, if it is in a supported shape.
    fn constraint(&self, expr: &Expr) -> Option<(String, Constraint)> {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (column, value, op) = match (column_name(left), column_name(right)) {
                    (Some(c), None) => (c, right.as_ref(), *op),
                    (None, Some(c)) => (c, left.as_ref(), op.swap()?),
                    _ => return None,
                };
                if op == Operator::Eq && self.equality.contains(&column) {
                    let value = literal_string(value)?;
                    return Some((column.into(), Constraint::OneOf(BTreeSet::from([value]))));
                }
                if !self.ranges.contains(&column) {
                    return None;
                }
                let v = expr_int(value)?;
                let range = match op {
                    Operator::Eq => (Some(v), Some(v)),
                    Operator::Gt => (v.checked_add(1), None),
                    Operator::GtEq => (Some(v), None),
                    Operator::Lt => (None, v.checked_sub(1)),
                    Operator::LtEq => (None, Some(v)),
                    _ => return None,
                };
                Some((column.into(), Constraint::Range(range.0, range.1)))
            }
            Expr::InList(list) if !list.negated => {
                let column = column_name(&list.expr)?;
                if !self.equality.contains(&column) {
                    return None;
                }
                let values: Option<BTreeSet<String>> =
                    list.list.iter().map(literal_string).collect();
                Some((column.into(), Constraint::OneOf(values?)))
            }
            Expr::Between(between) if !between.negated => {
                let column = column_name(&between.expr)?;
                if !self.ranges.contains(&column) {
                    return None;
                }
                let low = expr_int(&between.low)?;
                let high = expr_int(&between.high)?;
                Some((column.into(), Constraint::Range(Some(low), Some(high))))
            }
            _ => None,
        }
    }

    /// DataFusion's pushdown answer for each filter.
    pub(crate) fn classify(&self, filters: &[&Expr]) -> Vec<TableProviderFilterPushDown> {
        filters
            .iter()
            .map(|f| match self.constraint(f) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect()
    }

    /// The combined filter of the pushed-down predicates (others are ignored: DataFusion
    /// applies them above the scan).
    pub(crate) fn filter(&self, filters: &[Expr]) -> ScanFilter {
        let mut scan = ScanFilter::default();
        for (column, constraint) in filters.iter().filter_map(|f| self.constraint(f)) {
            scan.add(column, constraint);
        }
        scan
    }
}

impl ScanFilter {
    fn add(&mut self, column: String, constraint: Constraint) {
        self.by_column.entry(column).or_default().push(constraint);
    }

    /// Copies `column`'s constraints from `other`.
    pub(crate) fn copy_from(&mut self, other: &ScanFilter, column: &str) {
        if let Some(all) = other.by_column.get(column) {
            self.by_column.insert(column.to_string(), all.clone());
        }
    }

    /// The accepted values of a column, if constrained to sets (their intersection).
    pub(crate) fn values(&self, column: &str) -> Option<BTreeSet<String>> {
        let mut sets = self.by_column.get(column)?.iter().filter_map(|c| match c {
            Constraint::OneOf(values) => Some(values),
            Constraint::Range(..) => None,
        });
        let first = sets.next()?.clone();
        Some(sets.fold(first, |acc, s| acc.intersection(s).cloned().collect()))
    }

    /// The intersection of `column`'s ranges (inclusive; `None` is open). Set constraints on
    /// the column are not included.
    pub(crate) fn range(&self, column: &str) -> (Option<i64>, Option<i64>) {
        let mut bounds: (Option<i64>, Option<i64>) = (None, None);
        for constraint in self.by_column.get(column).into_iter().flatten() {
            if let Constraint::Range(low, high) = constraint {
                bounds.0 = bounds.0.max(*low);
                bounds.1 = match (bounds.1, *high) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        bounds
    }

    /// Whether a string column's value passes.
    pub(crate) fn allows(&self, column: &str, value: &str) -> bool {
        self.by_column.get(column).is_none_or(|all| {
            all.iter().all(|c| match c {
                Constraint::OneOf(values) => values.contains(value),
                Constraint::Range(..) => value.parse::<i64>().is_ok_and(|v| in_range(c, v)),
            })
        })
    }

    /// Whether an integer column's value passes.
    pub(crate) fn allows_int(&self, column: &str, value: i64) -> bool {
        self.by_column.get(column).is_none_or(|all| {
            all.iter().all(|c| match c {
                Constraint::OneOf(values) => values.contains(&value.to_string()),
                Constraint::Range(..) => in_range(c, value),
            })
        })
    }

    /// What the scan applies, for `EXPLAIN`.
    pub(crate) fn describe(&self) -> String {
        let parts: Vec<String> = self
            .by_column
            .iter()
            .flat_map(|(column, all)| all.iter().map(move |c| (column, c)))
            .map(|(column, constraint)| match constraint {
                Constraint::OneOf(values) => {
                    let shown: Vec<&str> = values.iter().map(String::as_str).take(5).collect();
                    let more = if values.len() > 5 { ", ..." } else { "" };
                    format!("{column} IN ({}{more})", shown.join(", "))
                }
                Constraint::Range(low, high) => format!(
                    "{column} IN [{}, {}]",
                    low.map_or("-inf".into(), |v| v.to_string()),
                    high.map_or("+inf".into(), |v| v.to_string())
                ),
            })
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(" AND ")
        }
    }
}

fn in_range(constraint: &Constraint, value: i64) -> bool {
    match constraint {
        Constraint::Range(low, high) => {
            low.is_none_or(|l| value >= l) && high.is_none_or(|h| value <= h)
        }
        Constraint::OneOf(_) => true,
    }
}
