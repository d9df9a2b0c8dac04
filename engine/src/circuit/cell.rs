//! The fixed cell layout every circuit datagram uses, and the bodies of the
//! control cells (CREATE, CREATED, DESTROY).
//!
//! ```text
//! offset len  field
//! 0      1    version (crate::wire::VERSION)
//! 1      1    kind (MessageKind::Circuit = 3)
//! 2      4    circ_id, big-endian, never 0 (link-local; chosen by the side that sent CREATE)
//! 6      1    command: 1 CREATE, 2 CREATED, 3 FORWARD, 4 BACKWARD, 5 DESTROY
//! 7      8    seq, big-endian: the sender's per-circuit, per-direction counter in
//!             FORWARD/BACKWARD cells (the cipher nonce); 0 in every other command
//! 15     1185 body
//! ```
//!
//! Every cell is exactly [`CELL_LEN`] bytes, so the size of a datagram never
//! tells an observer what it carries or where on the path it is. Control
//! bodies are zero padded and a decoder refuses non-zero padding, so the
//! padding is no covert channel.

use crate::crypto::KxPublic;
use crate::identity::NodeId;
use crate::wire::{self, MessageKind, WireError};

/// Length of every cell datagram, in bytes.
pub const CELL_LEN: usize = 1200;
/// Length of the cell header (version, kind, circ_id, command, seq), in bytes.
pub const HEADER_LEN: usize = 15;
/// Length of the cell body, in bytes.
pub const BODY_LEN: usize = CELL_LEN - HEADER_LEN;
/// Length of the end-to-end authentication tag at the end of a relay body, in bytes.
pub const TAG_LEN: usize = crate::crypto::aead::TAG_LEN;
/// Length of the plaintext a FORWARD or BACKWARD cell carries end to end, in bytes.
pub const PLAINTEXT_LEN: usize = BODY_LEN - TAG_LEN;

const CIRC_ID: core::ops::Range<usize> = 2..6;
const COMMAND: usize = 6;
const SEQ: core::ops::Range<usize> = 7..15;

/// What a cell asks of its receiver; byte 6 of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum CellCommand {
    /// Extend towards a relay: carries a [`CreateBody`].
    Create = 1,
    /// The relay's answer to CREATE: carries a [`CreatedBody`].
    Created = 2,
    /// A relay cell travelling from the client towards the exit.
    Forward = 3,
    /// A relay cell travelling from the exit towards the client.
    Backward = 4,
    /// Tear the circuit down, sent by the side that sent CREATE (towards
    /// the exit): carries a [`DestroyBody`].
    Destroy = 5,
    /// Tear the circuit down, sent by the side that answered CREATE
    /// (towards the client): carries a [`DestroyBody`]. Two commands, so a
    /// receiver knows which of its two circuit-id spaces the id is in.
    DestroyBack = 6,
}

impl CellCommand {
    /// The command for a header byte, if assigned.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(CellCommand::Create),
            2 => Some(CellCommand::Created),
            3 => Some(CellCommand::Forward),
            4 => Some(CellCommand::Backward),
            5 => Some(CellCommand::Destroy),
            6 => Some(CellCommand::DestroyBack),
            _ => None,
        }
    }

    /// Whether cells of this command carry a sequence number (FORWARD and BACKWARD).
    pub fn is_relay(self) -> bool {
        matches!(self, CellCommand::Forward | CellCommand::Backward)
    }
}

/// Why a datagram is not a well-formed cell, or a body not a well-formed
/// control body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    /// The datagram is not exactly [`CELL_LEN`] bytes.
    #[error("cell of {len} bytes, expected {CELL_LEN}")]
    Length {
        /// Received length, in bytes.
        len: usize,
    },
    /// Version byte other than [`wire::VERSION`].
    #[error("unsupported protocol version {0}")]
    Version(u8),
    /// Kind byte other than [`MessageKind::Circuit`].
    #[error("message kind {0} is not a cell")]
    Kind(u8),
    /// Command byte not assigned to any [`CellCommand`].
    #[error("unknown cell command {0}")]
    Command(u8),
    /// Circuit id 0, which no circuit uses.
    #[error("circuit id 0")]
    ZeroCircId,
    /// A CREATE, CREATED or DESTROY cell with a non-zero sequence number.
    #[error("non-zero sequence number in a control cell")]
    NonZeroSeq,
    /// A control body whose padding is not all zeros.
    #[error("non-zero padding in a control body")]
    Padding,
}

impl From<CellError> for WireError {
    fn from(error: CellError) -> Self {
        match error {
            CellError::Length { len } if len < CELL_LEN => WireError::Truncated,
            CellError::Length { len } => WireError::Oversized { len },
            CellError::Version(v) => WireError::UnsupportedVersion(v),
            CellError::Kind(k) => WireError::UnknownKind(k),
            CellError::Command(_) => WireError::InvalidField("cell command"),
            CellError::ZeroCircId => WireError::Protocol("zero circuit id"),
            CellError::NonZeroSeq => WireError::Protocol("non-zero seq in a control cell"),
            CellError::Padding => WireError::Protocol("non-zero padding in a control body"),
        }
    }
}

/// One cell: exactly [`CELL_LEN`] bytes, owned. The header fields are always
/// valid (a known command), whether the cell was built with [`Cell::new`] or
/// accepted by [`Cell::parse`].
#[derive(Clone, PartialEq, Eq)]
pub struct Cell(Box<[u8; CELL_LEN]>);

impl Cell {
    /// A cell with the given header and an all-zero body.
    ///
    /// `circ_id` must not be 0, and `seq` must be 0 unless `command` is
    /// FORWARD or BACKWARD, or the receiver's [`Cell::parse`] refuses it.
    pub fn new(circ_id: u32, command: CellCommand, seq: u64) -> Cell {
        let mut bytes = Box::new([0u8; CELL_LEN]);
        bytes[0] = wire::VERSION;
        bytes[1] = MessageKind::Circuit as u8;
        let mut cell = Cell(bytes);
        cell.set_circ_id(circ_id);
        cell.set_command(command);
        cell.set_seq(seq);
        cell
    }

    /// Parses a received datagram (header included). Checks, in this order:
    /// the length is exactly [`CELL_LEN`], the version, the kind, the command,
    /// a non-zero circuit id, and a zero seq in control cells. The body is not
    /// looked at (control bodies are checked by their `read`, relay bodies by
    /// the end-to-end AEAD).
    pub fn parse(datagram: &[u8]) -> Result<Cell, CellError> {
        let bytes: &[u8; CELL_LEN] = datagram.try_into().map_err(|_| CellError::Length { len: datagram.len() })?;
        check_header(bytes)?;
        Ok(Cell(Box::new(*bytes)))
    }

    /// Like [`Cell::parse`], but takes ownership of a received buffer and
    /// reuses its allocation.
    pub fn from_vec(datagram: Vec<u8>) -> Result<Cell, CellError> {
        let len = datagram.len();
        let bytes: Box<[u8; CELL_LEN]> =
            datagram.into_boxed_slice().try_into().map_err(|_| CellError::Length { len })?;
        check_header(&bytes)?;
        Ok(Cell(bytes))
    }

    /// The link-local circuit id.
    pub fn circ_id(&self) -> u32 {
        u32::from_be_bytes([self.0[2], self.0[3], self.0[4], self.0[5]])
    }

    /// Replaces the circuit id (a relay does this when it passes a cell to the next link).
    pub fn set_circ_id(&mut self, id: u32) {
        self.0[CIRC_ID].copy_from_slice(&id.to_be_bytes());
    }

    /// The command.
    pub fn command(&self) -> CellCommand {
        // Every constructor guarantees a known command byte; DESTROY is the
        // harmless answer should that ever be false.
        CellCommand::from_byte(self.0[COMMAND]).unwrap_or(CellCommand::Destroy)
    }

    /// Replaces the command.
    pub fn set_command(&mut self, command: CellCommand) {
        self.0[COMMAND] = command as u8;
    }

    /// The sequence number (0 in control cells).
    pub fn seq(&self) -> u64 {
        let mut be = [0u8; 8];
        be.copy_from_slice(&self.0[SEQ]);
        u64::from_be_bytes(be)
    }

    /// Replaces the sequence number.
    pub fn set_seq(&mut self, seq: u64) {
        self.0[SEQ].copy_from_slice(&seq.to_be_bytes());
    }

    /// The body.
    pub fn body(&self) -> &[u8; BODY_LEN] {
        let (_, body) = self.0.split_at(HEADER_LEN);
        // A CELL_LEN array split at HEADER_LEN always leaves BODY_LEN bytes.
        body.try_into().unwrap_or(&[0; BODY_LEN])
    }

    /// The body, mutably (for sealing, peeling or writing a control body in place).
    pub fn body_mut(&mut self) -> &mut [u8; BODY_LEN] {
        let (_, body) = self.0.split_at_mut(HEADER_LEN);
        match body.try_into() {
            Ok(body) => body,
            // A CELL_LEN array split at HEADER_LEN always leaves BODY_LEN bytes.
            Err(_) => unreachable!("cell body is BODY_LEN bytes"),
        }
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &[u8; CELL_LEN] {
        &self.0
    }

    /// The whole datagram as a `Vec`, without copying.
    pub fn into_vec(self) -> Vec<u8> {
        let boxed: Box<[u8]> = self.0;
        boxed.into_vec()
    }
}

fn check_header(bytes: &[u8; CELL_LEN]) -> Result<(), CellError> {
    if bytes[0] != wire::VERSION {
        return Err(CellError::Version(bytes[0]));
    }
    if bytes[1] != MessageKind::Circuit as u8 {
        return Err(CellError::Kind(bytes[1]));
    }
    let command = CellCommand::from_byte(bytes[COMMAND]).ok_or(CellError::Command(bytes[COMMAND]))?;
    if bytes[CIRC_ID].iter().all(|&b| b == 0) {
        return Err(CellError::ZeroCircId);
    }
    if !command.is_relay() && bytes[SEQ].iter().any(|&b| b != 0) {
        return Err(CellError::NonZeroSeq);
    }
    Ok(())
}

impl core::fmt::Debug for Cell {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Cell")
            .field("circ_id", &self.circ_id())
            .field("command", &self.command())
            .field("seq", &self.seq())
            .finish_non_exhaustive()
    }
}

/// Copies the first `N` bytes of a body.
fn take<const N: usize>(body: &[u8; BODY_LEN], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&body[at..at + N]);
    out
}

/// Refuses a body whose bytes from `used` on are not all zero.
fn check_padding(body: &[u8; BODY_LEN], used: usize) -> Result<(), CellError> {
    if body[used..].iter().all(|&b| b == 0) { Ok(()) } else { Err(CellError::Padding) }
}

/// Writes `fields` at the front of `body` and zeroes the rest.
fn write_fields(body: &mut [u8; BODY_LEN], fields: &[&[u8]]) {
    let mut at = 0;
    for field in fields {
        body[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    body[at..].fill(0);
}

/// The body of a CREATE cell: `[X 32][relay id 32][hop 1][zeros]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateBody {
    /// The client's ephemeral key-agreement public key (X).
    pub client_public: KxPublic,
    /// The relay the client means to reach (so a relay refuses a handshake meant for another).
    pub relay_id: NodeId,
    /// The relay's position on the circuit (0 for the guard). Its backward
    /// sequence numbers start there, so the EXTENDED cells of successive
    /// hops and the last hop's channel never share a `seq` in any relay's
    /// backward replay window.
    pub hop: u8,
}

impl CreateBody {
    /// Writes the body, zero padded, over all of `body`.
    pub fn write(&self, body: &mut [u8; BODY_LEN]) {
        write_fields(body, &[&self.client_public.0, self.relay_id.as_bytes(), &[self.hop]]);
    }

    /// Reads a body; refuses non-zero padding.
    pub fn read(body: &[u8; BODY_LEN]) -> Result<Self, CellError> {
        check_padding(body, 65)?;
        Ok(CreateBody { client_public: KxPublic(take(body, 0)), relay_id: NodeId(take(body, 32)), hop: body[64] })
    }
}

/// The body of a CREATED cell: `[Y 32][AUTH 32][zeros]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreatedBody {
    /// The relay's ephemeral key-agreement public key (Y).
    pub server_public: KxPublic,
    /// The relay's proof that it holds the onion secret key (see `handshake`).
    pub auth: [u8; 32],
}

impl CreatedBody {
    /// Writes the body, zero padded, over all of `body`.
    pub fn write(&self, body: &mut [u8; BODY_LEN]) {
        write_fields(body, &[&self.server_public.0, &self.auth]);
    }

    /// Reads a body; refuses non-zero padding.
    pub fn read(body: &[u8; BODY_LEN]) -> Result<Self, CellError> {
        check_padding(body, 64)?;
        Ok(CreatedBody { server_public: KxPublic(take(body, 0)), auth: take(body, 32) })
    }
}

/// The body of a DESTROY cell: `[reason 1][zeros]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestroyBody {
    /// Why the circuit is torn down (meaning chosen by the circuit machine).
    pub reason: u8,
}

impl DestroyBody {
    /// Writes the body, zero padded, over all of `body`.
    pub fn write(&self, body: &mut [u8; BODY_LEN]) {
        write_fields(body, &[&[self.reason]]);
    }

    /// Reads a body; refuses non-zero padding.
    pub fn read(body: &[u8; BODY_LEN]) -> Result<Self, CellError> {
        check_padding(body, 1)?;
        Ok(DestroyBody { reason: body[0] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const COMMANDS: [CellCommand; 6] = [
        CellCommand::Create,
        CellCommand::Created,
        CellCommand::Forward,
        CellCommand::Backward,
        CellCommand::Destroy,
        CellCommand::DestroyBack,
    ];

    fn valid() -> Vec<u8> {
        Cell::new(0x0102_0304, CellCommand::Forward, 7).into_vec()
    }

    #[test]
    fn layout_is_as_documented() {
        let mut cell = Cell::new(0xA1B2_C3D4, CellCommand::Backward, 0x0102_0304_0506_0708);
        cell.body_mut()[0] = 0xEE;
        let bytes = cell.as_bytes();
        assert_eq!(bytes.len(), CELL_LEN);
        assert_eq!(&bytes[..15], &[1, 3, 0xA1, 0xB2, 0xC3, 0xD4, 4, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(bytes[15], 0xEE);
        assert!(bytes[16..].iter().all(|&b| b == 0));
        assert_eq!(PLAINTEXT_LEN, 1169);
        assert_eq!(format!("{cell:?}"), "Cell { circ_id: 2712847316, command: Backward, seq: 72623859790382856, .. }");
    }

    proptest! {
        #[test]
        fn header_fields_round_trip(circ_id in 1u32.., cmd in 0usize..5, seq in any::<u64>(), byte in any::<u8>()) {
            let command = COMMANDS[cmd];
            let seq = if command.is_relay() { seq } else { 0 };
            let mut cell = Cell::new(circ_id, command, seq);
            cell.body_mut()[BODY_LEN - 1] = byte;
            let parsed = Cell::parse(cell.as_bytes()).unwrap();
            prop_assert_eq!(&parsed, &cell);
            prop_assert_eq!((parsed.circ_id(), parsed.command(), parsed.seq()), (circ_id, command, seq));
            prop_assert_eq!(parsed.body()[BODY_LEN - 1], byte);
            prop_assert_eq!(Cell::from_vec(cell.clone().into_vec()).unwrap(), cell);
        }

        #[test]
        fn setters_touch_only_their_field(id in 1u32.., seq in any::<u64>()) {
            let mut cell = Cell::new(9, CellCommand::Forward, 3);
            cell.body_mut().fill(0x55);
            cell.set_circ_id(id);
            cell.set_seq(seq);
            cell.set_command(CellCommand::Backward);
            prop_assert_eq!((cell.circ_id(), cell.seq(), cell.command()), (id, seq, CellCommand::Backward));
            prop_assert!(cell.body().iter().all(|&b| b == 0x55));
            prop_assert_eq!(&cell.as_bytes()[..2], &[wire::VERSION, MessageKind::Circuit as u8]);
        }
    }

    #[test]
    fn parse_rejects_each_malformation() {
        let good = valid();
        assert!(Cell::parse(&good).is_ok());
        assert_eq!(Cell::parse(&good[..CELL_LEN - 1]), Err(CellError::Length { len: CELL_LEN - 1 }));
        assert_eq!(Cell::parse(&[]), Err(CellError::Length { len: 0 }));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(Cell::parse(&long), Err(CellError::Length { len: CELL_LEN + 1 }));
        assert_eq!(Cell::from_vec(long), Err(CellError::Length { len: CELL_LEN + 1 }));

        let with = |at: usize, value: u8| {
            let mut bad = good.clone();
            bad[at] = value;
            bad
        };
        assert_eq!(Cell::parse(&with(0, 2)), Err(CellError::Version(2)));
        assert_eq!(Cell::parse(&with(1, 1)), Err(CellError::Kind(1)));
        assert_eq!(Cell::parse(&with(6, 0)), Err(CellError::Command(0)));
        assert_eq!(Cell::parse(&with(6, 7)), Err(CellError::Command(7)));
        let mut zero_id = good.clone();
        zero_id[2..6].fill(0);
        assert_eq!(Cell::parse(&zero_id), Err(CellError::ZeroCircId));
        assert_eq!(Cell::from_vec(zero_id), Err(CellError::ZeroCircId));
        for command in [CellCommand::Create, CellCommand::Created, CellCommand::Destroy, CellCommand::DestroyBack] {
            let bad = with(6, command as u8);
            assert_eq!(Cell::parse(&bad), Err(CellError::NonZeroSeq), "{command:?}");
            let mut ok = bad;
            ok[7..15].fill(0);
            assert!(Cell::parse(&ok).is_ok());
        }
    }

    #[test]
    fn errors_map_to_wire_errors() {
        let cases = [
            (CellError::Length { len: 3 }, WireError::Truncated),
            (CellError::Length { len: 1300 }, WireError::Oversized { len: 1300 }),
            (CellError::Version(9), WireError::UnsupportedVersion(9)),
            (CellError::Kind(1), WireError::UnknownKind(1)),
            (CellError::Command(9), WireError::InvalidField("cell command")),
        ];
        for (cell, wire) in cases {
            assert_eq!(WireError::from(cell), wire);
        }
        for error in [CellError::ZeroCircId, CellError::NonZeroSeq, CellError::Padding] {
            assert_eq!(WireError::from(error).label(), "protocol");
        }
    }

    #[test]
    fn control_bodies_round_trip_and_refuse_padding() {
        let mut body = [0xFFu8; BODY_LEN];
        let create = CreateBody { client_public: KxPublic([1; 32]), relay_id: NodeId([2; 32]), hop: 2 };
        create.write(&mut body);
        assert_eq!(&body[..32], &[1; 32]);
        assert_eq!(&body[32..64], &[2; 32]);
        assert_eq!(body[64], 2);
        assert_eq!(CreateBody::read(&body), Ok(create));
        body[65] = 1;
        assert_eq!(CreateBody::read(&body), Err(CellError::Padding));

        let created = CreatedBody { server_public: KxPublic([3; 32]), auth: [4; 32] };
        created.write(&mut body);
        assert_eq!(CreatedBody::read(&body), Ok(created));
        body[BODY_LEN - 1] = 1;
        assert_eq!(CreatedBody::read(&body), Err(CellError::Padding));

        let destroy = DestroyBody { reason: 7 };
        destroy.write(&mut body);
        assert!(body[1..].iter().all(|&b| b == 0));
        assert_eq!(DestroyBody::read(&body), Ok(destroy));
        body[1] = 1;
        assert_eq!(DestroyBody::read(&body), Err(CellError::Padding));
    }
}
