//! Targets for the mixnet's message layer: inner messages, message bodies,
//! mix addresses and end-to-end sealed messages fed arbitrary bytes, and
//! reassembly driven by a script of fragments and time steps. Each
//! function panics if a property is broken.

use allium_engine::crypto::{CryptoSuite, KxPublic, KxSecret};
use allium_engine::mix::address::{AddressError, MixAddress};
use allium_engine::mix::message::{
    self, Inner, MAX_FRAGMENTS, MAX_REPLY_SURBS, MessageBody, MessageError, MessageId, SEAL_OVERHEAD,
};
use allium_engine::mix::packet::SURB_LEN;
use allium_engine::mix::reassembly::{Reassembly, ReassemblyError};
use allium_engine::rng::NodeSeed;
use allium_engine::time::Instant;
use bolero::TypeGenerator;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

/// The recipient secret every sealed harness message is opened with.
fn recipient_secret() -> KxSecret {
    KxSecret::from_bytes([0x42; 32])
}

/// `mix_message_decode`: arbitrary bytes into [`Inner::decode`],
/// [`MessageBody::decode`], [`MixAddress::from_bytes`], the address text
/// parser and [`message::open`] (fixed key): none panics; whatever decodes
/// re-encodes to the same bytes (the text form up to hex case). The bytes
/// are also patched into a well-formed fragment (which must decode), a
/// body with a valid SURB count, a 96-byte address, an address text, and
/// XORed onto a valid sealed message (any change is refused, none opens).
pub fn mix_message_decode(bytes: &[u8]) {
    check_inner(bytes);
    if let Some(fragment) = fragment_candidate(bytes) {
        assert!(Inner::decode(&fragment).is_ok(), "well-formed fragment refused");
        check_inner(&fragment);
    }

    check_body(bytes);
    if let Some((first, rest)) = bytes.split_first() {
        let mut body = vec![first % (MAX_REPLY_SURBS as u8 + 1)];
        body.extend_from_slice(rest);
        check_body(&body);
    }

    check_address_bytes(bytes);
    let mut sized = bytes.to_vec();
    sized.resize(MixAddress::LEN, 0);
    check_address_bytes(&sized);
    if let Ok(text) = core::str::from_utf8(bytes) {
        check_address_text(text);
    }
    let valid = MixAddress::from_bytes(&sized).expect("96 bytes").to_string();
    let mut patched = valid.into_bytes();
    let len = patched.len();
    for (i, b) in bytes.iter().enumerate().filter(|(_, b)| b.is_ascii()) {
        if let Some(slot) = patched.get_mut((i * 7) % len) {
            *slot = *b;
        }
    }
    check_address_text(core::str::from_utf8(&patched).expect("ASCII"));

    check_open(bytes);
}

/// [`Inner::decode`]: typed errors only; a decoded message re-encodes to the input.
fn check_inner(bytes: &[u8]) {
    match Inner::decode(bytes) {
        Ok(inner) => assert_eq!(inner.encode(), bytes, "inner re-encoding differs"),
        Err(e) => {
            assert!(e.metric().starts_with("mix.message.rejected."));
            if bytes.is_empty() {
                assert_eq!(e, MessageError::Truncated);
            }
            assert!(!matches!(e, MessageError::DegenerateKey | MessageError::Unauthentic), "{e:?}");
        }
    }
}

/// A well-formed fragment built from `bytes`: the header fields taken from
/// them and fixed up (count 1..=256, index below it, SURB flag 0/1 when
/// there are enough bytes for a SURB), the rest as data with its exact length.
fn fragment_candidate(bytes: &[u8]) -> Option<Vec<u8>> {
    let (head, rest) = bytes.split_first_chunk::<21>()?;
    let count = 1 + u16::from_le_bytes([head[18], head[19]]) % MAX_FRAGMENTS as u16;
    let index = u16::from_le_bytes([head[16], head[17]]) % count;
    let with_surb = head[20] & 1 == 1 && rest.len() >= SURB_LEN;
    let (surb, data) = if with_surb { rest.split_at(SURB_LEN) } else { (&rest[..0], rest) };
    let data = &data[..data.len().min(usize::from(u16::MAX))];
    let mut out = vec![1];
    out.extend_from_slice(&head[..16]);
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.push(u8::from(with_surb));
    out.extend_from_slice(surb);
    out.extend_from_slice(&(data.len() as u16).to_le_bytes());
    out.extend_from_slice(data);
    Some(out)
}

/// [`MessageBody::decode`]: typed errors only; a decoded body re-encodes to the input.
fn check_body(bytes: &[u8]) {
    match MessageBody::decode(bytes) {
        Ok(body) => {
            assert!(body.reply_surbs.len() <= MAX_REPLY_SURBS);
            assert_eq!(body.encode(), bytes, "body re-encoding differs");
        }
        Err(MessageError::Truncated) => {
            let n = usize::from(bytes.first().copied().unwrap_or(0));
            assert!(bytes.is_empty() || bytes.len() < 1 + n * SURB_LEN);
        }
        Err(MessageError::TooManySurbs(n)) => assert!(usize::from(n) > MAX_REPLY_SURBS && bytes.first() == Some(&n)),
        Err(e) => panic!("unexpected body error {e:?}"),
    }
}

/// [`MixAddress::from_bytes`] refuses exactly a wrong length; an address
/// writes back to the same bytes and its text form parses back to it.
fn check_address_bytes(bytes: &[u8]) {
    match MixAddress::from_bytes(bytes) {
        Ok(a) => {
            assert_eq!(a.to_bytes().as_slice(), bytes);
            let text = a.to_string();
            assert_eq!(text.len(), 3 * 64 + 2);
            assert_eq!(text.parse::<MixAddress>(), Ok(a));
        }
        Err(e) => {
            assert_eq!((e, bytes.len() == MixAddress::LEN), (AddressError::WrongLength { len: bytes.len() }, false))
        }
    }
}

/// The text parser: typed errors only; what parses prints back to the
/// input up to hex case.
fn check_address_text(text: &str) {
    match text.parse::<MixAddress>() {
        Ok(a) => {
            assert!(a.to_string().eq_ignore_ascii_case(text), "{text:?} printed as {a}");
            assert_eq!(MixAddress::from_bytes(&a.to_bytes()), Ok(a));
        }
        Err(AddressError::WrongLength { .. }) => panic!("text parser reported a byte length"),
        Err(_) => {}
    }
}

/// [`message::open`] with a fixed key on the raw bytes (typed error or
/// plaintext, never a panic), and on the bytes XORed onto a valid sealed
/// message: unchanged opens to the plaintext, any change is refused.
fn check_open(bytes: &[u8]) {
    let sk = recipient_secret();
    match message::open(CryptoSuite::Real, &sk, bytes) {
        Ok(plain) => assert_eq!(plain.len() + SEAL_OVERHEAD, bytes.len()),
        Err(MessageError::Truncated) => assert!(bytes.len() < SEAL_OVERHEAD),
        Err(MessageError::DegenerateKey | MessageError::Unauthentic) => assert!(bytes.len() >= SEAL_OVERHEAD),
        Err(e) => panic!("unexpected open error {e:?}"),
    }

    let pk = CryptoSuite::Real.kx_public(&sk);
    let mut rng = NodeSeed::from_bytes([2; 32]).stream("fuzz mix message open");
    let plaintext = b"fuzz sealed message";
    let mut sealed = message::seal(CryptoSuite::Real, &mut rng, &pk, plaintext).expect("valid key");
    let mut changed = false;
    for (s, b) in sealed.iter_mut().zip(bytes) {
        *s ^= b;
        changed |= *b != 0;
    }
    match message::open(CryptoSuite::Real, &sk, &sealed) {
        Ok(plain) => {
            assert!(!changed, "a changed sealed message opened");
            assert_eq!(plain, plaintext);
        }
        Err(MessageError::DegenerateKey | MessageError::Unauthentic) => assert!(changed),
        Err(e) => panic!("unexpected open error {e:?}"),
    }
    // A degenerate recipient key is refused when sealing, never a panic.
    assert_eq!(
        message::seal(CryptoSuite::Real, &mut rng, &KxPublic([0; 32]), plaintext),
        Err(MessageError::DegenerateKey)
    );
}

/// Input of `mix_reassembly`.
#[derive(Clone, Debug, TypeGenerator)]
pub struct ReassemblyInput {
    /// Partial messages held: `1 + max_partial % 4`.
    pub max_partial: u8,
    /// Time to live, in milliseconds.
    pub ttl_ms: u16,
    /// What happens, in order.
    pub steps: Vec<ReassemblyStep>,
}

/// One step of a [`ReassemblyInput`].
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum ReassemblyStep {
    /// A fragment: message `id % IDS`; `index` and `count` small (below 4)
    /// when their top bit is clear, else raw (a count of 255 stands for 300,
    /// over `MAX_FRAGMENTS`); `len % 8` bytes of data identifying the message
    /// and index.
    Fragment {
        /// Which message.
        id: u8,
        /// The fragment's index.
        index: u8,
        /// The fragment's count.
        count: u8,
        /// The data's length.
        len: u8,
    },
    /// The clock moves forward by `ms` milliseconds.
    Wait {
        /// Milliseconds.
        ms: u16,
    },
    /// [`Reassembly::expire`] is called.
    Expire,
}

/// Messages the script draws from.
const IDS: u8 = 6;

/// The byte every data byte of fragment `index` of message `id` holds;
/// neighbouring indices differ, so a body splits back into its fragments.
fn fill(id: u8, index: u16) -> u8 {
    id.wrapping_mul(37).wrapping_add((index as u8).wrapping_mul(7)).wrapping_add(1)
}

fn small_or_raw(v: u8) -> u16 {
    if v & 0x80 == 0 { u16::from(v % 4) } else { u16::from(v) }
}

/// `mix_reassembly`: a script of fragments (ids from a small set) and time
/// steps into a [`Reassembly`]: it never panics; a body it returns is the
/// concatenation, in index order, of data given for each index of that
/// message and count; a completed message is not delivered again right
/// away; out-of-range fragments are refused, a count mismatch only follows
/// a fragment with the other count; partial messages never exceed the
/// bound, remembered ids never exceed 4 × the bound, `expire` drops what it
/// reports and leaves nothing due.
pub fn mix_reassembly(input: &ReassemblyInput) {
    let max_partial = 1 + usize::from(input.max_partial % 4);
    let ttl = Duration::from_millis(u64::from(input.ttl_ms));
    let mut r = Reassembly::new(max_partial, ttl);
    let mut now = Instant::ZERO;
    // Lengths given for each (message, count, index).
    let mut given: BTreeMap<(u8, u16, u16), BTreeSet<usize>> = BTreeMap::new();
    let mut counts: BTreeMap<u8, BTreeSet<u16>> = BTreeMap::new();
    let mut evicted = 0;

    for step in &input.steps {
        match *step {
            ReassemblyStep::Fragment { id, index, count, len } => {
                let id = id % IDS;
                let message = MessageId([id; 16]);
                let index = small_or_raw(index);
                let count = if count == 255 { 300 } else { small_or_raw(count) };
                let data = vec![fill(id, index); usize::from(len % 8)];
                let valid = count >= 1 && usize::from(count) <= MAX_FRAGMENTS && index < count;
                let result = r.insert(now, message, index, count, &data);
                if valid {
                    given.entry((id, count, index)).or_default().insert(data.len());
                }
                match result {
                    Err(ReassemblyError::BadFragment { index: i, count: c }) => {
                        assert!(!valid && (i, c) == (index, count));
                    }
                    Err(ReassemblyError::CountMismatch { expected, got }) => {
                        assert!(valid && got == count && expected != count);
                        assert!(
                            counts.get(&id).is_some_and(|c| c.contains(&expected)),
                            "mismatch with a count never given"
                        );
                    }
                    Ok(got) => {
                        assert!(valid, "out-of-range fragment accepted");
                        if let Some(body) = got {
                            check_body_parts(&given, id, count, &body);
                            assert_eq!(r.insert(now, message, index, count, &data), Ok(None), "delivered twice");
                        }
                    }
                }
                if valid {
                    counts.entry(id).or_default().insert(count);
                }
            }
            ReassemblyStep::Wait { ms } => now = now.saturating_add(Duration::from_millis(u64::from(ms))),
            ReassemblyStep::Expire => {
                let before = r.partial();
                let dropped = r.expire(now);
                assert_eq!(r.partial() + dropped, before);
                assert!(r.next_expiry().is_none_or(|t| t > now), "expire left something due");
            }
        }
        assert!(r.partial() <= max_partial, "{} partial messages over {max_partial}", r.partial());
        assert!(r.remembered() <= 4 * max_partial);
        assert!(r.evicted() >= evicted);
        evicted = r.evicted();
        if r.partial() + r.remembered() > 0 {
            assert!(r.next_expiry().is_some());
        }
    }
}

/// Checks that `body` is, for each index of `count` in turn, a run of that
/// index's fill byte of a length given for it.
fn check_body_parts(given: &BTreeMap<(u8, u16, u16), BTreeSet<usize>>, id: u8, count: u16, body: &[u8]) {
    let mut rest = body;
    for index in 0..count {
        let b = fill(id, index);
        let run = rest.iter().take_while(|&&x| x == b).count();
        let lens = given.get(&(id, count, index)).expect("a fragment of every index was given");
        assert!(lens.contains(&run), "part {index} of message {id}: {run} bytes, given {lens:?}");
        rest = &rest[run..];
    }
    assert!(rest.is_empty(), "body longer than its parts");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_candidates_decode() {
        assert_eq!(fragment_candidate(&[0; 20]), None);
        for len in [21, 22, 21 + SURB_LEN, 500] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8 | 1).collect();
            let f = fragment_candidate(&bytes).unwrap();
            assert!(Inner::decode(&f).is_ok(), "len {len}");
        }
        mix_message_decode(&[]);
        mix_message_decode(&[1; 600]);
    }

    #[test]
    fn reassembly_script_completes_messages() {
        use ReassemblyStep::*;
        let input = ReassemblyInput {
            max_partial: 1,
            ttl_ms: 100,
            steps: vec![
                Fragment { id: 1, index: 1, count: 2, len: 3 },
                Fragment { id: 1, index: 1, count: 2, len: 5 },
                Fragment { id: 1, index: 0, count: 2, len: 0 },
                Fragment { id: 2, index: 0, count: 3, len: 1 },
                Fragment { id: 2, index: 0, count: 2, len: 1 },
                Fragment { id: 3, index: 0, count: 0, len: 1 },
                Fragment { id: 3, index: 5, count: 255, len: 1 },
                Wait { ms: 100 },
                Expire,
            ],
        };
        mix_reassembly(&input);
    }
}
