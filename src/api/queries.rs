//! The call records the API reads, through the store's pooled readers ([`run`]: off the async
//! executor) and its [`CallRecords`] queries; here only the paging (cursors) and the mapping of
//! store errors to answers.

pub use crate::store::{CallEventRow, CallFilter, CallRecord};
use crate::store::{CallRecords, Reader, StoreError};

use super::{ApiError, ApiState};

pub fn encode_cursor(r: &CallRecord) -> String {
    format!("{}.{}", r.entered_at_ms, r.id)
}

pub fn decode_cursor(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Run blocking `f` on a pooled reader of the store.
pub async fn run<T: Send + 'static>(
    st: &ApiState,
    f: impl FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    st.inner.store.read(f).await.map_err(|e| match e {
        StoreError::Busy => ApiError::unavailable("call records are busy; try again"),
        StoreError::Missing(_) | StoreError::Closed => {
            tracing::warn!(error = %e, "API cannot read the database");
            ApiError::unavailable("call records are not available")
        }
        e => {
            tracing::warn!(error = %e, "API query failed");
            ApiError::internal("query failed")
        }
    })
}

/// Calls matching `f`, newest first, and the cursor of the next page (None on the last page).
pub fn list_calls(
    store: &dyn CallRecords,
    f: &CallFilter,
) -> Result<(Vec<CallRecord>, Option<String>), StoreError> {
    let mut rows = store.calls(f)?;
    let next = if rows.len() > f.limit {
        rows.truncate(f.limit);
        rows.last().map(encode_cursor)
    } else {
        None
    };
    Ok((rows, next))
}
