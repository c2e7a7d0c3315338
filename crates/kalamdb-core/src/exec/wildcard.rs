//! `*` lists a table's own columns, also when the statement names `_seq`
//! or `_deleted` elsewhere (which makes the table expose them): so
//! `SELECT *, _seq FROM t` has `_seq` once and `SELECT * FROM t WHERE
//! _seq > 5` has none, as PostgreSQL treats its system columns.
//!
//! Done for a SELECT of one USER or SHARED table (no joins), by adding
//! `EXCLUDE (_seq, _deleted)` to its wildcards; with joins, `*` still
//! lists them (DataFusion's EXCLUDE cannot name a column two tables have).

use crate::schema::{DELETED_COLUMN, SEQ_COLUMN};
use kalamdb_sql::sqlparser::ast::{
    ExcludeSelectItem, Ident, ObjectName, SelectItem, SetExpr, Statement, TableFactor,
};

pub(super) fn hide_system_columns(
    statement: &mut Statement,
    is_user_table: impl Fn(&ObjectName) -> bool,
) {
    let Statement::Query(query) = statement else {
        return;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let [from] = select.from.as_slice() else {
        return;
    };
    let TableFactor::Table { name, .. } = &from.relation else {
        return;
    };
    if !from.joins.is_empty() || !is_user_table(name) {
        return;
    }
    for item in &mut select.projection {
        let options = match item {
            SelectItem::Wildcard(options) | SelectItem::QualifiedWildcard(_, options) => options,
            _ => continue,
        };
        if options.opt_exclude.is_none() && options.opt_except.is_none() {
            options.opt_exclude = Some(ExcludeSelectItem::Multiple(
                [SEQ_COLUMN, DELETED_COLUMN]
                    .into_iter()
                    .map(|c| ObjectName::from(vec![Ident::new(c)]))
                    .collect(),
            ));
        }
    }
}
