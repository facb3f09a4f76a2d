use std::fmt;

/// maskfr's one error type, in every crate: a message that reads on its own when it reaches
/// a user, because it names where things went wrong: the op and what it expected
/// ([`Error::new`], [`ensure!`]), or the file and record, the rank, the library. Crates add
/// their context by prefixing the message, never by wrapping it in another type.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(pub String);

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `op` (an operation or an argument): `"{op}: {msg}"`.
    pub fn new(op: &str, msg: impl fmt::Display) -> Self {
        Error(format!("{op}: {msg}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// `ensure!(cond, op, "format", args)` returns an [`Error`] for `op` when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $op:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Error::new($op, format!($($fmt)+)));
        }
    };
}
