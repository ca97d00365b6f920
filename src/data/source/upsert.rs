//! Writing ratings back into a PostgreSQL source: one user's ratings upserted in one
//! transaction (`INSERT ... ON CONFLICT (user, item) DO UPDATE`), into a table and columns named
//! by the caller (quoted identifiers, checked by the settings). Ids are sent as the columns'
//! types ask (text, or integers parsed from the id); the rating as `float8`, cast by the server
//! to the column's numeric type.
//!
//! Must not import: the file sources, anything above `src/data`.

use postgres::types::{ToSql, Type};

use super::error::PostgresError;
use super::postgres::{Query, connect, describe};

/// Where ratings are written: the table (`name` or `schema.name`) and its user, item, rating
/// and optional timestamp columns (set to `now()`), all plain identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The table.
    pub table: String,
    /// 3 or 4 column names.
    pub columns: Vec<String>,
}

/// Why ratings were not written.
#[derive(Debug, thiserror::Error)]
pub enum UpsertError {
    /// The source is not a database.
    #[error("the ratings source is not a database")]
    ReadOnly,
    /// An id that the column's integer type cannot take.
    #[error("{what} id {id:?} is not an integer, as column {column} ({kind}) needs")]
    BadId {
        /// `user` or `item`.
        what: &'static str,
        /// The id (shortened).
        id: String,
        /// The column.
        column: String,
        /// Its type.
        kind: String,
    },
    /// The database could not be reached or refused the write.
    #[error(transparent)]
    Database(#[from] PostgresError),
}

impl Target {
    /// The upsert statement for this table.
    fn statement(&self) -> String {
        let quote = |name: &str| format!("\"{name}\"");
        let table = self
            .table
            .split('.')
            .map(quote)
            .collect::<Vec<_>>()
            .join(".");
        let cols: Vec<String> = self.columns.iter().map(|c| quote(c)).collect();
        let mut values = vec!["$1".to_owned(), "$2".into(), "$3::float8".into()];
        let mut set = vec![format!("{0} = EXCLUDED.{0}", cols[2])];
        if let Some(stamp) = cols.get(3) {
            values.push("now()".into());
            set.push(format!("{stamp} = EXCLUDED.{stamp}"));
        }
        format!(
            "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT ({}, {}) DO UPDATE SET {}",
            cols.join(", "),
            values.join(", "),
            cols[0],
            cols[1],
            set.join(", ")
        )
    }
}

/// Upserts `ratings` (item id, rating) of `user` in one transaction: all or none.
pub(super) fn upsert(
    q: &Query<'_>,
    target: &Target,
    user: &str,
    ratings: &[(String, f64)],
) -> Result<(), UpsertError> {
    let mut client = connect(q)?;
    let sql = target.statement();
    let failed = |e: postgres::Error| PostgresError::Query {
        reason: describe(&e),
        query: sql.clone(),
    };
    let mut tx = client.transaction().map_err(failed)?;
    let statement = tx.prepare(&sql).map_err(failed)?;
    let (user_type, item_type) = (&statement.params()[0], &statement.params()[1]);
    let user = Id::of(user, user_type, "user", &target.columns[0])?;
    for (item, rating) in ratings {
        let item = Id::of(item, item_type, "item", &target.columns[1])?;
        tx.execute(&statement, &[user.as_sql(), item.as_sql(), rating])
            .map_err(failed)?;
    }
    tx.commit().map_err(failed)?;
    Ok(())
}

/// An id as the column's type takes it.
enum Id<'a> {
    Text(&'a str),
    Int2(i16),
    Int4(i32),
    Int8(i64),
}

impl<'a> Id<'a> {
    fn of(id: &'a str, t: &Type, what: &'static str, column: &str) -> Result<Self, UpsertError> {
        let bad = || UpsertError::BadId {
            what,
            id: id.chars().take(64).collect(),
            column: column.to_owned(),
            kind: t.name().to_owned(),
        };
        Ok(match *t {
            Type::INT2 => Self::Int2(id.parse().map_err(|_| bad())?),
            Type::INT4 => Self::Int4(id.parse().map_err(|_| bad())?),
            Type::INT8 => Self::Int8(id.parse().map_err(|_| bad())?),
            _ => Self::Text(id),
        })
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Text(s) => s,
            Self::Int2(x) => x,
            Self::Int4(x) => x,
            Self::Int8(x) => x,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_quotes_every_name_and_stamps_the_write() {
        let t = Target {
            table: "shop.ratings".into(),
            columns: vec!["uid".into(), "iid".into(), "stars".into(), "at".into()],
        };
        assert_eq!(
            t.statement(),
            "INSERT INTO \"shop\".\"ratings\" (\"uid\", \"iid\", \"stars\", \"at\") VALUES \
             ($1, $2, $3::float8, now()) ON CONFLICT (\"uid\", \"iid\") DO UPDATE SET \
             \"stars\" = EXCLUDED.\"stars\", \"at\" = EXCLUDED.\"at\""
        );
    }
}
