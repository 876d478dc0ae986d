//! Helpers shared by the integration tests (each test binary includes this module with `mod common;`).

use rusqlite::Connection;

/// The rows of each `(table, columns)` as text (`table:v1|v2|…|`), in rowid order: a database's contents to compare.
pub fn rows(c: &Connection, tables: &[(&str, &str)]) -> Vec<String> {
    let mut out = vec![];
    for (table, cols) in tables {
        let mut st = c.prepare(&format!("SELECT {cols} FROM {table} ORDER BY rowid")).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let mut s = format!("{table}:");
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    s.push_str(&format!("{v:?}|"));
                }
                Ok(s)
            })
            .unwrap();
        out.extend(rows.map(|r| r.unwrap()));
    }
    out
}
