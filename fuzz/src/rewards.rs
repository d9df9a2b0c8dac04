//! Targets for the rewards core: the receipt, challenge, answer, record,
//! inputs and record-pointer decoders fed arbitrary bytes (alone and XORed onto valid
//! encodings), and the settlement fed arbitrary small inputs. Each function
//! panics if a property is broken.

use allium_engine::overlay::{BlockId, Cid};
use allium_engine::rewards::challenge::MAX_PROOF_LEVELS;
use allium_engine::rewards::{
    Challenge, ChallengeAnswer, ChallengeError, ChallengeOutcome, EpochInputs, EpochRecord, InputsError, NodeEntry,
    PointerError, ProbeResult, Receipt, ReceiptBook, ReceiptError, RecordError, RecordPointer, RewardsParams, settle,
};
use allium_engine::rng::NodeSeed;
use allium_engine::wire::WireError;
use allium_engine::{CryptoSuite, Identity};
use bolero::TypeGenerator;
use std::sync::OnceLock;

/// Identities the harnesses sign with (created once per process).
fn pool() -> &'static [Identity] {
    static POOL: OnceLock<Vec<Identity>> = OnceLock::new();
    POOL.get_or_init(|| (0..6).map(|i| Identity::from_seed(&NodeSeed::derive(0xf22, i), CryptoSuite::Real)).collect())
}

fn body_error(e: &WireError) -> bool {
    matches!(
        e,
        WireError::Truncated | WireError::LimitExceeded | WireError::InvalidField(_) | WireError::TrailingBytes { .. }
    )
}

/// XORs `mask` onto `bytes` (cycling the mask over the first bytes, then
/// appending what is left of it when the mask is longer).
fn xor_onto(bytes: &[u8], mask: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (i, m) in mask.iter().enumerate() {
        match out.get_mut(i) {
            Some(b) => *b ^= m,
            None => out.push(*m),
        }
    }
    out
}

/// `rewards_receipt_decode`: arbitrary bytes into `Receipt::decode`, also
/// XORed onto a valid receipt. It never panics; what decodes re-encodes to
/// the same bytes and decodes to itself, `verify` and a `ReceiptBook`
/// take it without panicking, and a receipt that differs from the valid
/// one never verifies; errors are typed.
pub fn rewards_receipt_decode(bytes: &[u8]) {
    let ids = pool();
    let valid = Receipt::sign(&ids[0], 9, ids[1].id(), 123_456);
    let mut book = ReceiptBook::new(4);
    assert_eq!(book.insert(valid.clone()), Ok(123_456));
    for candidate in [bytes.to_vec(), xor_onto(&valid.encode(), bytes)] {
        match Receipt::decode(&candidate) {
            Ok(receipt) => {
                assert_eq!(receipt.encode(), candidate, "re-encoding differs");
                assert_eq!(Receipt::decode(&candidate).as_ref(), Ok(&receipt));
                let verified = receipt.verify();
                if receipt != valid && receipt.consumer_key == valid.consumer_key {
                    assert!(verified.is_err(), "a changed receipt still verifies: {receipt:?}");
                }
                let held = book.len();
                match book.insert(receipt) {
                    Ok(advance) => assert!(advance > 0 && verified.is_ok()),
                    Err(_) => assert!(book.len() == held),
                }
            }
            Err(ReceiptError::Decode(e)) => assert!(body_error(&e), "{e:?}"),
            Err(ReceiptError::NonCanonical) => {}
            Err(e) => panic!("decode returned a verification error: {e:?}"),
        }
    }
}

/// The chunk and challenge the challenge target answers.
fn fixed_challenge() -> (Vec<u8>, Challenge) {
    let chunk: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    let challenge = Challenge {
        epoch: 2,
        nonce: [0x42; 32],
        cid: Cid([3; 32]),
        chunk_index: 1,
        block: BlockId::of(&chunk),
        chunk_len: chunk.len() as u32,
    };
    (chunk, challenge)
}

fn challenge_error_is_typed(e: &ChallengeError) {
    if let ChallengeError::Decode(w) = e {
        assert!(body_error(w), "{w:?}");
    }
}

/// `rewards_challenge_decode`: arbitrary bytes into `Challenge::decode`
/// and `ChallengeAnswer::decode`, also XORed onto a valid challenge and a
/// valid answer. Nothing panics (decoding, answering with some data,
/// verifying); what decodes re-encodes to the same bytes; an answer that
/// differs from the honest one never verifies against the fixed challenge,
/// and a decoded challenge's own honest answer for its chunk data does.
pub fn rewards_challenge_decode(bytes: &[u8]) {
    let (chunk, fixed) = fixed_challenge();
    let honest = fixed.answer(&chunk);
    assert_eq!(fixed.verify(&honest), Ok(()));
    for candidate in [bytes.to_vec(), xor_onto(&fixed.encode(), bytes)] {
        match Challenge::decode(&candidate) {
            Ok(challenge) => {
                assert_eq!(challenge.encode(), candidate);
                // Answering with the fixed chunk and verifying never panics;
                // verifying the honest answer to the fixed challenge neither.
                let answer = challenge.answer(&chunk);
                let outcome = challenge.verify(&answer);
                if challenge.block == fixed.block && challenge.chunk_len == fixed.chunk_len {
                    assert_eq!(outcome, Ok(()), "an honest answer failed: {challenge:?}");
                }
                let _ = challenge.verify(&honest);
            }
            Err(e) => challenge_error_is_typed(&e),
        }
    }
    for candidate in [bytes.to_vec(), xor_onto(&honest.encode(), bytes)] {
        match ChallengeAnswer::decode(&candidate) {
            Ok(answer) => {
                assert_eq!(answer.encode(), candidate);
                assert!(answer.slice.len() <= 1024 && answer.proof.len() <= MAX_PROOF_LEVELS);
                let outcome = fixed.verify(&answer);
                assert_eq!(outcome.is_ok(), answer == honest, "{outcome:?} for {answer:?}");
            }
            Err(e) => challenge_error_is_typed(&e),
        }
    }
}

/// Small inputs every record target starts from.
fn fixed_inputs() -> EpochInputs {
    let ids = pool();
    let mut inputs = EpochInputs::new("fuzz", 5, 1_000_000, 3);
    inputs.nodes = ids[..4].iter().map(|i| NodeEntry::of(i.public())).collect();
    inputs.receipts = vec![Receipt::sign(&ids[0], 5, ids[1].id(), 50_000), Receipt::sign(&ids[2], 5, ids[1].id(), 1)];
    inputs.probes = vec![ProbeResult { node: ids[1].id(), bytes: 1000, elapsed_micros: 1000 }];
    inputs.challenges = vec![ChallengeOutcome {
        node: ids[3].id(),
        cid: Cid([1; 32]),
        chunk_index: 0,
        block: BlockId([2; 32]),
        publisher: ids[5].id(),
        passed: true,
    }];
    inputs.canonicalize();
    inputs
}

fn params() -> RewardsParams {
    RewardsParams { emission: 1_000_000, ..Default::default() }
}

/// `rewards_record_decode`: arbitrary bytes into `EpochRecord::decode`
/// and `EpochInputs::decode`, also XORed onto a valid record and valid
/// inputs. Nothing panics; what decodes re-encodes to the same bytes; a
/// decoded record that differs from the valid one never carries a valid
/// signature of its key; decoded inputs that differ from the valid ones
/// never pass the valid record's audit, and their own settlement conserves.
pub fn rewards_record_decode(bytes: &[u8]) {
    let inputs = fixed_inputs();
    let coordinator = &pool()[4];
    let record = EpochRecord::build(&params(), &inputs, [7; 32], coordinator);
    for candidate in [bytes.to_vec(), xor_onto(&record.encode(), bytes)] {
        match EpochRecord::decode(&candidate) {
            Ok(decoded) => {
                assert_eq!(decoded.encode(), candidate);
                let signed = decoded.verify_signature();
                if decoded != record && decoded.coordinator_key == record.coordinator_key {
                    assert!(!signed, "a changed record still verifies");
                }
                let _ = (decoded.hash(), decoded.json_view(), decoded.follows(&record));
                let audit = decoded.verify_against(&params(), &inputs);
                if decoded.inputs_digest == record.inputs_digest && decoded.payouts != record.payouts {
                    assert!(audit.is_err(), "changed payouts pass the audit");
                }
            }
            Err(RecordError::Decode(e)) => assert!(body_error(&e), "{e:?}"),
            Err(_) => {}
        }
    }
    for candidate in [bytes.to_vec(), xor_onto(&inputs.encode(), bytes)] {
        match EpochInputs::decode(&candidate) {
            Ok(decoded) => {
                assert_eq!(decoded.encode(), candidate);
                assert!(decoded.is_canonical());
                if decoded != inputs {
                    assert!(record.verify_against(&params(), &decoded).is_err(), "other inputs pass the audit");
                }
                let settlement = settle(&params(), &decoded);
                assert_eq!(settlement.paid() + u128::from(settlement.carried_out), u128::from(decoded.available()));
            }
            Err(InputsError::Decode(e)) => assert!(body_error(&e), "{e:?}"),
            Err(_) => {}
        }
    }
}

/// The valid pointer `rewards_pointer_decode` starts from.
fn fixed_pointer() -> RecordPointer {
    RecordPointer::sign(&pool()[4], "rewards", 11, [5; 32], Cid([6; 32]), Cid([7; 32]))
}

/// `rewards_pointer_decode`: arbitrary bytes into `RecordPointer::decode`,
/// also XORed onto a valid signed pointer. It never panics; what decodes
/// re-encodes to the same bytes and fits the default `dht.max_value_bytes`
/// (1024); a decoded pointer that differs from the valid one under the
/// same coordinator key never verifies; `verify` never panics; errors are
/// typed (body errors, `too_large`, `group_name`, `non_canonical`).
pub fn rewards_pointer_decode(bytes: &[u8]) {
    let pointer = fixed_pointer();
    for candidate in [bytes.to_vec(), xor_onto(&pointer.encode(), bytes)] {
        match RecordPointer::decode(&candidate) {
            Ok(decoded) => {
                assert_eq!(decoded.encode(), candidate);
                assert!(candidate.len() <= 1024);
                let verified = decoded.verify();
                if decoded != pointer && decoded.coordinator_key == pointer.coordinator_key {
                    assert!(verified.is_err(), "a changed pointer still verifies");
                }
                if decoded == pointer {
                    assert_eq!(verified, Ok(()));
                }
                let _ = decoded.coordinator();
            }
            Err(PointerError::Decode(e)) => assert!(body_error(&e), "{e:?}"),
            Err(PointerError::TooLarge) => {
                assert!(candidate.len() > allium_engine::rewards::pointer::MAX_POINTER_BYTES)
            }
            Err(PointerError::GroupName | PointerError::NonCanonical) => {}
            Err(PointerError::Signature) => panic!("decode does not check signatures"),
        }
    }
}

/// A receipt the `rewards_settle` target adds to its inputs.
#[derive(Clone, Debug, TypeGenerator)]
pub struct ReceiptChoice {
    /// Signer (index into the pool).
    pub consumer: u8,
    /// Provider (index into the pool).
    pub provider: u8,
    /// Bytes.
    pub bytes: u64,
    /// For the previous epoch instead.
    pub old: bool,
    /// Bytes changed after signing.
    pub forged: bool,
}

/// The input of `rewards_settle`: small epoch inputs and parameters.
#[derive(Clone, Debug, TypeGenerator)]
pub struct SettleInput {
    /// Base emission.
    pub emission: u64,
    /// Carry in.
    pub carried_in: u64,
    /// Bandwidth share, basis points (mod 10001).
    pub bandwidth_bps: u16,
    /// Storage share, basis points (mod what bandwidth leaves + 1).
    pub storage_bps: u16,
    /// Epoch length, s (at least 1).
    pub epoch_secs: u32,
    /// Bit i: pool identity i is registered.
    pub registered: u8,
    /// Receipts (the first 16).
    pub receipts: Vec<ReceiptChoice>,
    /// Probes: node, bytes, elapsed µs (the first 8).
    pub probes: Vec<(u8, u64, u64)>,
    /// Challenges: node, publisher, passed (the first 16).
    pub challenges: Vec<(u8, u8, bool)>,
}

/// `rewards_settle`: arbitrary small inputs into `settle`. It never
/// panics; `Σ totals + carried_out = emission + carried_in` (saturated at
/// `u64::MAX`); rows are sorted, non-zero and add up; reversing every list
/// gives the same settlement; a record built from the inputs passes its
/// own audit.
pub fn rewards_settle(input: &SettleInput) {
    let ids = pool();
    let at = |i: u8| &ids[usize::from(i) % ids.len()];
    let bw = u32::from(input.bandwidth_bps) % 10_001;
    let params = RewardsParams {
        epoch_secs: u64::from(input.epoch_secs.max(1)),
        emission: input.emission,
        bandwidth_share_bps: bw,
        storage_share_bps: u32::from(input.storage_bps) % (10_001 - bw),
        ..Default::default()
    };
    let mut inputs = EpochInputs::new("fuzz", 10, input.emission, input.carried_in);
    inputs.nodes = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| input.registered >> i & 1 == 1)
        .map(|(_, id)| NodeEntry::of(id.public()))
        .collect();
    for choice in input.receipts.iter().take(16) {
        let epoch = if choice.old { 9 } else { 10 };
        let mut receipt = Receipt::sign(at(choice.consumer), epoch, at(choice.provider).id(), choice.bytes);
        if choice.forged {
            receipt.bytes = receipt.bytes.wrapping_add(1);
        }
        inputs.receipts.push(receipt);
    }
    inputs.probes = input
        .probes
        .iter()
        .take(8)
        .map(|&(node, bytes, elapsed_micros)| ProbeResult { node: at(node).id(), bytes, elapsed_micros })
        .collect();
    inputs.challenges = input
        .challenges
        .iter()
        .take(16)
        .map(|&(node, publisher, passed)| ChallengeOutcome {
            node: at(node).id(),
            cid: Cid([node; 32]),
            chunk_index: u32::from(publisher),
            block: BlockId([publisher; 32]),
            publisher: at(publisher).id(),
            passed,
        })
        .collect();
    let settlement = settle(&params, &inputs);
    assert_eq!(settlement.paid() + u128::from(settlement.carried_out), u128::from(inputs.available()));
    if let Some(sum) = input.emission.checked_add(input.carried_in) {
        assert_eq!(inputs.available(), sum);
    }
    assert!(settlement.payouts.windows(2).all(|w| w[0].node < w[1].node));
    for p in &settlement.payouts {
        assert!(p.total > 0);
        assert_eq!(u128::from(p.total), u128::from(p.bandwidth) + u128::from(p.storage) + u128::from(p.publisher));
    }
    let mut reversed = inputs.clone();
    reversed.nodes.reverse();
    reversed.receipts.reverse();
    reversed.probes.reverse();
    reversed.challenges.reverse();
    assert_eq!(settle(&params, &reversed), settlement);
    let record = EpochRecord::build(&params, &inputs, [0; 32], &ids[0]);
    assert_eq!(record.verify_against(&params, &reversed), Ok(()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The valid encodings the byte targets start from pass their checks
    /// unchanged (an all-zero mask), and some random bytes are refused.
    #[test]
    fn the_valid_starting_points_pass() {
        rewards_receipt_decode(&[]);
        rewards_challenge_decode(&[]);
        rewards_record_decode(&[]);
        rewards_receipt_decode(&[0; 200]);
        rewards_challenge_decode(&[0; 3000]);
        rewards_record_decode(&[0; 600]);
        rewards_pointer_decode(&[]);
        rewards_pointer_decode(&[0; 700]);
        assert!(RecordPointer::decode(&fixed_pointer().encode()).is_ok_and(|p| p.verify().is_ok()));
        let (chunk, fixed) = fixed_challenge();
        assert!(ChallengeAnswer::decode(&fixed.answer(&chunk).encode()).is_ok());
        assert!(
            EpochRecord::decode(&EpochRecord::build(&params(), &fixed_inputs(), [0; 32], &pool()[0]).encode()).is_ok()
        );
        rewards_settle(&SettleInput {
            emission: 1000,
            carried_in: 0,
            bandwidth_bps: 7000,
            storage_bps: 2000,
            epoch_secs: 600,
            registered: 0xff,
            receipts: vec![ReceiptChoice { consumer: 0, provider: 1, bytes: 10, old: false, forged: false }],
            probes: vec![(1, 100, 100)],
            challenges: vec![(2, 3, true)],
        });
    }
}
