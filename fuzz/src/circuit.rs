//! Targets for the bottom layer of onion circuits: the fixed cell layout,
//! the control bodies, layered encryption, and the replay window. Each
//! function panics if a property is broken.

use allium_engine::circuit::cell::{
    BODY_LEN, CELL_LEN, Cell, CellError, CreateBody, CreatedBody, DestroyBody, PLAINTEXT_LEN,
};
use allium_engine::circuit::handshake::HopKeys;
use allium_engine::circuit::onion;
use allium_engine::circuit::replay::{MAX_AHEAD, ReplayError, ReplayWindow, WINDOW};
use allium_engine::wire::{self, MessageKind, WireError};
use bolero::TypeGenerator;
use std::collections::BTreeSet;

/// `cell_parse`: [`Cell::parse`] never panics; on `Ok` the cell's bytes are
/// exactly the input and [`Cell::from_vec`] agrees; on `Err` the error is the
/// first check the input fails, in the documented order (length, version,
/// kind, command, circuit id, seq). Random inputs are rarely exactly one
/// cell long, so the same bytes are also tried resized to [`CELL_LEN`], and
/// then with a valid version and kind, to reach the deeper checks.
pub fn cell_parse(bytes: &[u8]) {
    check_parse(bytes);
    let mut sized = bytes.to_vec();
    sized.resize(CELL_LEN, 0);
    check_parse(&sized);
    sized[0] = wire::VERSION;
    sized[1] = MessageKind::Circuit as u8;
    check_parse(&sized);
}

/// The error the documented checks predict for `bytes`, if any.
fn expected_error(bytes: &[u8]) -> Option<CellError> {
    if bytes.len() != CELL_LEN {
        return Some(CellError::Length { len: bytes.len() });
    }
    if bytes[0] != wire::VERSION {
        return Some(CellError::Version(bytes[0]));
    }
    if bytes[1] != 3 {
        return Some(CellError::Kind(bytes[1]));
    }
    if !(1..=6).contains(&bytes[6]) {
        return Some(CellError::Command(bytes[6]));
    }
    if bytes[2..6] == [0; 4] {
        return Some(CellError::ZeroCircId);
    }
    if !matches!(bytes[6], 3 | 4) && bytes[7..15] != [0; 8] {
        return Some(CellError::NonZeroSeq);
    }
    None
}

fn check_parse(bytes: &[u8]) {
    let parsed = Cell::parse(bytes);
    assert_eq!(parsed.as_ref().err().copied(), expected_error(bytes), "{bytes:?}");
    assert_eq!(Cell::from_vec(bytes.to_vec()), parsed);
    match parsed {
        Ok(cell) => {
            assert_eq!(&cell.as_bytes()[..], bytes);
            assert_eq!(cell.command() as u8, bytes[6]);
            assert_eq!(cell.circ_id().to_be_bytes(), bytes[2..6]);
            assert_eq!(cell.seq().to_be_bytes(), bytes[7..15]);
            assert_eq!(&cell.body()[..], &bytes[15..]);
            assert_eq!(cell.into_vec(), bytes);
        }
        Err(error) => {
            // The mapping to the node's typed wire errors is total and consistent.
            let wire = WireError::from(error);
            match error {
                CellError::Length { len } if len < CELL_LEN => assert_eq!(wire, WireError::Truncated),
                CellError::Length { len } => assert_eq!(wire, WireError::Oversized { len }),
                _ => assert!(["version", "kind", "invalid", "protocol"].contains(&wire.label()), "{wire:?}"),
            }
        }
    }
}

/// `cell_bodies`: the CREATE, CREATED and DESTROY body readers never panic
/// on an arbitrary body (the input, zero padded or cut to [`BODY_LEN`]);
/// what they read writes back to the identical body; they refuse a body
/// exactly when a byte past their fields is non-zero. The body is also
/// tried with everything past 64 bytes zeroed, so the readers succeed often.
pub fn cell_bodies(bytes: &[u8]) {
    let mut body = [0u8; BODY_LEN];
    let used = bytes.len().min(BODY_LEN);
    body[..used].copy_from_slice(&bytes[..used]);
    check_bodies(&body);
    body[64..].fill(0);
    check_bodies(&body);
}

fn check_bodies(body: &[u8; BODY_LEN]) {
    let padded_from = |at: usize| body[at..].iter().all(|&b| b == 0);
    let mut out = [0xA5u8; BODY_LEN];
    match CreateBody::read(body) {
        Ok(create) => {
            create.write(&mut out);
            assert_eq!(&out, body);
        }
        Err(error) => assert!(error == CellError::Padding && !padded_from(64)),
    }
    let mut out = [0x5Au8; BODY_LEN];
    match CreatedBody::read(body) {
        Ok(created) => {
            created.write(&mut out);
            assert_eq!(&out, body);
        }
        Err(error) => assert!(error == CellError::Padding && !padded_from(64)),
    }
    let mut out = [0xFFu8; BODY_LEN];
    match DestroyBody::read(body) {
        Ok(destroy) => {
            destroy.write(&mut out);
            assert_eq!(&out, body);
        }
        Err(error) => assert!(error == CellError::Padding && !padded_from(1)),
    }
}

/// Fuzzer input for [`onion_layers`].
#[derive(Clone, Debug, TypeGenerator)]
pub struct OnionInput {
    /// Hop count is `1 + hops % 4`.
    pub hops: u8,
    /// Keys of hop `i`: `forward_layer, forward_aead, backward_layer, backward_aead`.
    pub keys: [[[u8; 32]; 4]; 4],
    /// Sequence number of the cell.
    pub seq: u64,
    /// Plaintext pattern, repeated to fill [`PLAINTEXT_LEN`] (zeros when empty).
    pub plaintext: Vec<u8>,
    /// A bit to flip: the hop (taken modulo the hop count) before which (FORWARD)
    /// or after which (BACKWARD) it is flipped, and the bit index (modulo the body's bits).
    pub flip: Option<(u8, u16)>,
}

/// `onion_layers`: a FORWARD cell sealed by the client and passed through
/// every hop (peeled by all but the last, opened by the last) gives back the
/// plaintext, and so does a BACKWARD cell sealed by the last hop, wrapped by
/// the others and opened by the client. With one bit flipped at the chosen
/// hop, the end's AEAD refuses the cell in both directions.
pub fn onion_layers(input: &OnionInput) {
    let n = 1 + usize::from(input.hops % 4);
    let hops: Vec<HopKeys> = input.keys[..n]
        .iter()
        .map(|k| HopKeys { forward_layer: k[0], forward_aead: k[1], backward_layer: k[2], backward_aead: k[3] })
        .collect();
    let refs: Vec<&HopKeys> = hops.iter().collect();
    let mut plaintext = [0u8; PLAINTEXT_LEN];
    if !input.plaintext.is_empty() {
        for (i, b) in plaintext.iter_mut().enumerate() {
            *b = input.plaintext[i % input.plaintext.len()];
        }
    }
    let flip = input.flip.map(|(hop, bit)| (usize::from(hop) % n, usize::from(bit) % (BODY_LEN * 8)));
    let flip_at = |body: &mut [u8; BODY_LEN], hop: usize| {
        if let Some((at, bit)) = flip
            && at == hop
        {
            body[bit / 8] ^= 1 << (bit % 8);
        }
    };
    let seq = input.seq;

    let mut body = [0u8; BODY_LEN];
    onion::client_seal_forward(&refs, seq, &plaintext, &mut body);
    let mut forward = Ok(());
    for (i, hop) in hops.iter().enumerate() {
        flip_at(&mut body, i);
        if i + 1 < n {
            onion::relay_peel_forward(hop, seq, &mut body);
        } else {
            forward = onion::relay_open_forward(hop, seq, &mut body);
        }
    }
    match flip {
        None => {
            assert_eq!(forward, Ok(()), "forward cell refused");
            assert_eq!(&body[..PLAINTEXT_LEN], &plaintext[..]);
        }
        Some(_) => assert!(forward.is_err(), "flipped forward cell accepted"),
    }

    let mut body = [0u8; BODY_LEN];
    for i in (0..n).rev() {
        if i + 1 == n {
            onion::relay_seal_backward(&hops[i], seq, &plaintext, &mut body);
        } else {
            onion::relay_wrap_backward(&hops[i], seq, &mut body);
        }
        flip_at(&mut body, i);
    }
    let backward = onion::client_open_backward(&refs, seq, &mut body);
    match flip {
        None => {
            assert_eq!(backward, Ok(()), "backward cell refused");
            assert_eq!(&body[..PLAINTEXT_LEN], &plaintext[..]);
        }
        Some(_) => assert!(backward.is_err(), "flipped backward cell accepted"),
    }
}

/// One step of a [`replay_window`] input: how the next seq is chosen.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum SeqStep {
    /// The previous seq plus a small amount.
    Up(u8),
    /// The previous seq minus a small amount (saturating).
    Down(u8),
    /// The highest accepted seq minus `n % (WINDOW + 8)`: lands around the window's bottom edge.
    Behind(u16),
    /// The highest accepted seq plus `1 + n % (MAX_AHEAD + 8)`: lands around the jump limit.
    Ahead(u32),
    /// An arbitrary seq.
    Raw(u64),
    /// The previous seq again.
    Repeat,
}

/// `replay_window`: a fuzzer-chosen walk of seqs fed to
/// [`ReplayWindow::accept`] never has a seq accepted twice, and the verdict
/// on every seq is exactly the reference model's (a set of every accepted
/// seq plus the window rules). `check` agrees with `accept` and does not
/// change the window; a refused seq leaves it as it was.
pub fn replay_window(steps: &[SeqStep]) {
    let mut window = ReplayWindow::default();
    let mut accepted = BTreeSet::new();
    let mut seq = 0u64;
    for step in steps {
        let highest: u64 = accepted.last().copied().unwrap_or(0);
        seq = match *step {
            SeqStep::Up(d) => seq.saturating_add(u64::from(d)),
            SeqStep::Down(d) => seq.saturating_sub(u64::from(d)),
            SeqStep::Behind(d) => highest.saturating_sub(u64::from(d) % (WINDOW + 8)),
            SeqStep::Ahead(d) => highest.saturating_add(1 + u64::from(d) % (MAX_AHEAD + 8)),
            SeqStep::Raw(s) => s,
            SeqStep::Repeat => seq,
        };
        let expected = model(&accepted, seq);
        let before = window.clone();
        let checked = window.check(seq);
        assert_eq!(window, before, "check changed the window");
        let got = window.accept(seq);
        assert_eq!(got, checked);
        assert_eq!(got, expected, "seq {seq}");
        if got.is_ok() {
            assert!(accepted.insert(seq), "seq {seq} accepted twice");
        } else {
            assert_eq!(window, before, "a refused seq changed the window");
        }
        assert_eq!(window.highest(), accepted.last().copied());
    }
}

/// The window rules over the set of every seq accepted so far.
fn model(accepted: &BTreeSet<u64>, seq: u64) -> Result<(), ReplayError> {
    match accepted.last().copied() {
        None if seq >= MAX_AHEAD => Err(ReplayError::TooFarAhead),
        None => Ok(()),
        Some(h) if seq > h && seq - h > MAX_AHEAD => Err(ReplayError::TooFarAhead),
        Some(h) if seq > h => Ok(()),
        Some(h) if h - seq >= WINDOW => Err(ReplayError::TooOld),
        Some(_) if accepted.contains(&seq) => Err(ReplayError::Duplicate),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use allium_engine::circuit::cell::CellCommand;

    #[test]
    fn parse_harness_reaches_the_ok_path() {
        let cell = Cell::new(77, CellCommand::Forward, 12);
        cell_parse(cell.as_bytes());
        cell_parse(&cell.as_bytes()[..100]);
    }

    #[test]
    fn onion_harness_detects_flips_at_every_hop() {
        let keys = [[[1u8; 32], [2; 32], [3; 32], [4; 32]]; 4];
        for hops in 0..4u8 {
            for at in 0..4u8 {
                let input = OnionInput {
                    hops,
                    keys,
                    seq: 9,
                    plaintext: b"hello".to_vec(),
                    flip: Some((at, 1000 * u16::from(at))),
                };
                onion_layers(&input);
            }
            onion_layers(&OnionInput { hops, keys, seq: 9, plaintext: Vec::new(), flip: None });
        }
    }

    #[test]
    fn replay_harness_covers_every_verdict() {
        replay_window(&[
            SeqStep::Up(5),
            SeqStep::Repeat,
            SeqStep::Down(2),
            SeqStep::Ahead(2000),
            SeqStep::Behind(1024),
            SeqStep::Behind(1023),
            SeqStep::Ahead(65_535),
            SeqStep::Ahead(65_536),
            SeqStep::Raw(u64::MAX),
        ]);
    }
}
