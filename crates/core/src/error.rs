use std::fmt;

/// An error that names the operation (or argument) and says what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub op: String,
    pub msg: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(op: &str, msg: impl Into<String>) -> Self {
        Error { op: op.to_string(), msg: msg.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.msg)
    }
}

impl std::error::Error for Error {}

/// A failure told by its message alone, which names where it happened (a file and record, a
/// rank, a library): the data, distributed and CUDA crates all report with this one type.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// `ensure!(cond, op, "format", args)` returns an [`Error`] for `op` when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $op:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Error::new($op, format!($($fmt)+)));
        }
    };
}
