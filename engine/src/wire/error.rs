//! Typed decode errors.

/// Why a datagram was rejected. Every variant has a stable metric label.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than the fixed header or the body ended early.
    #[error("datagram truncated")]
    Truncated,
    /// Larger than [`super::MAX_DATAGRAM`].
    #[error("datagram of {len} bytes exceeds the maximum")]
    Oversized {
        /// Received length, in bytes.
        len: usize,
    },
    /// Version byte other than [`super::VERSION`].
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// Kind byte not assigned to any message kind.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// A length prefix or the body exceeded the decode limit.
    #[error("decode size limit exceeded")]
    LimitExceeded,
    /// A field held a value its type does not allow (bad enum tag, bad UTF-8, …).
    #[error("invalid field: {0}")]
    InvalidField(&'static str),
    /// The body decoded but bytes were left over.
    #[error("{extra} trailing bytes after message")]
    TrailingBytes {
        /// Number of unread bytes.
        extra: usize,
    },
    /// The message decoded but violates a protocol rule (bad signature, id mismatch, …).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
}

impl WireError {
    /// Name of the per-reason counter, `wire.rejected.<label>`.
    pub fn metric(&self) -> &'static str {
        match self {
            WireError::Truncated => "wire.rejected.truncated",
            WireError::Oversized { .. } => "wire.rejected.oversized",
            WireError::UnsupportedVersion(_) => "wire.rejected.version",
            WireError::UnknownKind(_) => "wire.rejected.kind",
            WireError::LimitExceeded => "wire.rejected.limit",
            WireError::InvalidField(_) => "wire.rejected.invalid",
            WireError::TrailingBytes { .. } => "wire.rejected.trailing",
            WireError::Protocol(_) => "wire.rejected.protocol",
        }
    }

    /// The stable reason label: the last segment of [`WireError::metric`].
    pub fn label(&self) -> &'static str {
        let metric = self.metric();
        metric.strip_prefix("wire.rejected.").unwrap_or(metric)
    }
}

impl From<bincode::error::DecodeError> for WireError {
    fn from(e: bincode::error::DecodeError) -> Self {
        use bincode::error::DecodeError as E;
        match e {
            E::UnexpectedEnd { .. } => WireError::Truncated,
            E::LimitExceeded => WireError::LimitExceeded,
            E::InvalidIntegerType { .. } => WireError::InvalidField("integer type"),
            E::NonZeroTypeIsZero { .. } => WireError::InvalidField("zero in a non-zero type"),
            E::UnexpectedVariant { .. } => WireError::InvalidField("enum variant"),
            E::Utf8 { .. } => WireError::InvalidField("utf-8"),
            E::InvalidCharEncoding(_) => WireError::InvalidField("char"),
            E::InvalidBooleanValue(_) => WireError::InvalidField("bool"),
            E::ArrayLengthMismatch { .. } => WireError::InvalidField("array length"),
            E::OutsideUsizeRange(_) => WireError::LimitExceeded,
            E::EmptyEnum { .. } => WireError::InvalidField("empty enum"),
            E::InvalidDuration { .. } => WireError::InvalidField("duration"),
            E::InvalidSystemTime { .. } => WireError::InvalidField("system time"),
            E::CStringNulError { .. } => WireError::InvalidField("c string"),
            _ => WireError::InvalidField("other"),
        }
    }
}
