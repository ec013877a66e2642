//! How the ids and vocabularies of `crate::outbound` are stored: ids as integers, the
//! vocabularies as their snake_case names (`as_str` / `FromStr`).

use crate::outbound::{
    AttemptId, AttemptResult, ContactId, ContactState, ListId, ListState, Mode, OutboundError,
    Purpose,
};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

macro_rules! id_sql {
    ($($name:ident),+) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }
    )+};
}

id_sql!(ListId, ContactId, AttemptId);

macro_rules! str_sql {
    ($($name:ident),+) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = value.as_str()?;
                s.parse()
                    .map_err(|e: OutboundError| FromSqlError::Other(Box::new(e)))
            }
        }
    )+};
}

str_sql!(Purpose, Mode, ListState, ContactState, AttemptResult);
