//! The operations' error: what went wrong, in the kinds a caller acts on. Every operation in
//! `ops` returns [`OpError`]; the HTTP layer maps it to a status and an error body in one place
//! (`routes::error`), the CLI to an exit code, the scheduler to a log line and a counter.
//!
//! Messages are sentences for the operator, with credentials already masked (capture errors are
//! masked at the source). An internal error's details are for the log, not for the caller.

use crate::capture::CaptureError;
use crate::db::DbError;
use crate::models::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No such camera, schedule, frame or token.
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or the change conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// A field of the input is invalid; names the field.
    #[error("{0}")]
    Invalid(#[from] FieldError),
    /// The camera gave no frame.
    #[error("{0}")]
    Capture(#[from] CaptureError),
    /// An ONVIF device could not be reached, refused the credentials, or answered with what
    /// Heldar cannot use (`crate::onvif`).
    #[error("{0}")]
    Onvif(#[from] crate::onvif::OnvifError),
    /// The disk holding the frames is full: the frame was not kept.
    #[error("{0}")]
    DiskFull(String),
    /// Well-formed, but it cannot be done as asked (a timelapse of a range with no frames, or
    /// with more than the limit): a 422 with its own machine code.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        field: Option<&'static str>,
    },
    /// Something the operation needs is missing or busy right now (ffmpeg not installed, the
    /// job queue full): a 503 with its own machine code.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// Anything else: the database failing, a bug. Logged in full, shown as a generic sentence.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl OpError {
    pub fn not_found(message: impl Into<String>) -> OpError {
        OpError::NotFound(message.into())
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> OpError {
        OpError::Invalid(FieldError::new(field, message))
    }
}

impl From<DbError> for OpError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(m) => OpError::Conflict(m),
            DbError::NoParent(m) => OpError::NotFound(m),
            e @ DbError::Unavailable { .. } => OpError::Unavailable {
                code: "database_unavailable",
                message: e.to_string(),
            },
            other => OpError::Internal(other.into()),
        }
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DiskFull(_) => OpError::DiskFull(e.to_string()),
            StoreError::Io(_) => OpError::Internal(e.into()),
            StoreError::Unavailable(message) => OpError::Unavailable {
                code: "storage_unavailable",
                message,
            },
        }
    }
}

impl From<crate::camera::seal::SealError> for OpError {
    fn from(e: crate::camera::seal::SealError) -> Self {
        OpError::Internal(e.into())
    }
}

impl From<std::io::Error> for OpError {
    fn from(e: std::io::Error) -> Self {
        OpError::Internal(e.into())
    }
}

/// What `ops` returns.
pub type OpResult<T> = Result<T, OpError>;

/// An error and its causes on one line, as anyhow's `{:#}` writes them (`outer: cause: …`),
/// except that a cause whose text the line already holds is left out. Most errors here (sqlx's,
/// `DbError`, `MigrateError`) put their cause into their own message *and* report it as their
/// source, so `{:#}` repeats it: "error communicating with database: Connection refused (os
/// error 111): Connection refused (os error 111)". Every error an operator reads — the start-up
/// error, a service's failure log — is written with this.
pub fn report(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    /// A real failure of a real SQLite database (a statement naming a missing table), through
    /// `DbError` and anyhow as start-up sees it: the driver's message appears once.
    #[tokio::test]
    async fn a_database_error_names_its_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("heldar.db").display());
        let pool = crate::db::connect(&url).await.unwrap();
        let e = sqlx::query("SELECT * FROM no_such_table")
            .execute(pool.sqlite().unwrap())
            .await
            .map_err(crate::db::step("reading the cameras"))
            .unwrap_err();
        let e = anyhow::Error::from(e).context("listing");
        let anyhow_line = format!("{e:#}");
        assert!(
            anyhow_line.matches("no such table: no_such_table").count() > 1,
            "anyhow no longer repeats it; this helper may be unneeded: {anyhow_line}"
        );
        let line = super::report(&*e);
        assert_eq!(
            line.matches("no such table: no_such_table").count(),
            1,
            "{line}"
        );
        assert!(
            line.starts_with("listing: database error while reading the cameras: "),
            "{line}"
        );
    }
}
