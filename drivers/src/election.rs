//! `allium-node election …`: offline tooling for lease-election groups.
//!
//! * `founder-key --out FILE`: a new founder secret (an Ed25519 seed, 64 hex
//!   digits, file mode 0600); prints the public key for `founder_key`.
//! * `membership --founder FILE --group NAME --member KEY@ADDR:PRIORITY …
//!   --out FILE`: version 1 of a group's membership, signed by the founder,
//!   written as the hex of [`Membership::encode`].
//! * `token --founder FILE --group NAME --key KEY --priority P
//!   [--expires-version V] --out FILE`: a founder-signed join token, hex.
//!
//! A member's `KEY` is its Ed25519 signing key (64 hex digits), which
//! `allium-node init` and `allium-node ctl id --signing-key` print.

use allium_engine::election::{JoinToken, Member, Membership};
use allium_engine::identity::{NodeId, hex, parse_hex32};
use allium_engine::{CryptoSuite, Identity};
use anyhow::{Context, bail};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// `allium-node election …`.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum ElectionCli {
    /// Create a new founder secret in FILE (mode 0600) and print its public key.
    FounderKey {
        /// Where to write the secret (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write version 1 of a group's membership, signed by the founder.
    Membership {
        /// The founder secret file (from `founder-key`).
        #[arg(long)]
        founder: PathBuf,
        /// The group's name (1 ..= 64 bytes).
        #[arg(long)]
        group: String,
        /// A member: `SIGNING_KEY_HEX@ADDR:PORT:PRIORITY` (repeatable).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        /// Where to write the list (hex).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a founder-signed join token for one node.
    Token {
        /// The founder secret file.
        #[arg(long)]
        founder: PathBuf,
        /// The group's name.
        #[arg(long)]
        group: String,
        /// The joining node's signing key (64 hex digits).
        #[arg(long)]
        key: String,
        /// The priority it joins with, 0 ..= 255.
        #[arg(long, default_value_t = 0)]
        priority: u8,
        /// Refuse the token for membership versions above this one. Default: never expires.
        #[arg(long)]
        expires_version: Option<u64>,
        /// Where to write the token (hex).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Writes `text` to a new file at `path` with mode 0600 (refuses to overwrite).
fn write_private(path: &Path, text: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text).and_then(|()| file.sync_all()).with_context(|| format!("writing {}", path.display()))
}

/// The founder identity of a 32-byte Ed25519 seed (the onion half of the
/// identity is unused: a founder only signs).
fn founder_identity(seed: &[u8; 32]) -> Identity {
    let mut secret = Zeroizing::new([0u8; 64]);
    secret[..32].copy_from_slice(seed);
    Identity::from_secret(&secret, CryptoSuite::Real)
}

/// Creates a founder secret at `out`; returns the public key, hex.
pub fn founder_key(out: &Path) -> anyhow::Result<String> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| anyhow::anyhow!("OS entropy unavailable: {e}"))?;
    let text = Zeroizing::new(format!("{}\n", hex(&seed[..])));
    write_private(out, text.as_bytes())?;
    Ok(hex(&founder_identity(&seed).public().signing_key))
}

/// Loads the founder secret from `path`.
pub fn load_founder(path: &Path) -> anyhow::Result<Identity> {
    let text = Zeroizing::new(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?);
    let seed = Zeroizing::new(
        parse_hex32(text.trim())
            .with_context(|| format!("{}: expected a founder secret of 64 hex digits", path.display()))?,
    );
    Ok(founder_identity(&seed))
}

/// Parses a 64-hex-digit Ed25519 public key.
fn parse_key(text: &str) -> anyhow::Result<[u8; 32]> {
    parse_hex32(text.trim()).with_context(|| format!("expected a signing key of 64 hex digits, got {text:?}"))
}

/// Parses `SIGNING_KEY_HEX@ADDR:PORT:PRIORITY` into a member entry.
pub fn parse_member(text: &str) -> anyhow::Result<Member> {
    let (key, rest) = text.split_once('@').with_context(|| format!("{text:?}: expected KEY@ADDR:PORT:PRIORITY"))?;
    let (addr, priority) =
        rest.rsplit_once(':').with_context(|| format!("{text:?}: expected KEY@ADDR:PORT:PRIORITY"))?;
    let signing_key = parse_key(key)?;
    let addr: SocketAddr = addr.parse().with_context(|| format!("{text:?}: bad address {addr:?}"))?;
    let priority: u8 = priority.parse().with_context(|| format!("{text:?}: priority must be 0 ..= 255"))?;
    Ok(Member { id: NodeId::from_public_key(&signing_key), signing_key, addr, priority })
}

/// Writes `bytes` as hex (and a newline) to `out`.
fn write_hex(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(out, format!("{}\n", hex(bytes))).with_context(|| format!("writing {}", out.display()))
}

/// Runs one `allium-node election` command, printing what it made.
pub fn run(command: ElectionCli) -> anyhow::Result<()> {
    match command {
        ElectionCli::FounderKey { out } => {
            let public = founder_key(&out)?;
            println!("{public}");
            eprintln!("founder secret written to {} (mode 0600); keep it offline", out.display());
        }
        ElectionCli::Membership { founder, group, members, out } => {
            let founder = load_founder(&founder)?;
            let members = members.iter().map(|m| parse_member(m)).collect::<anyhow::Result<Vec<_>>>()?;
            let count = members.len();
            let membership = Membership::founder(&founder, &group, members);
            if membership.members.len() != count {
                bail!("a member is listed twice");
            }
            membership.verify().map_err(|e| anyhow::anyhow!("group {group:?}: {e}"))?;
            write_hex(&out, &membership.encode())?;
            eprintln!(
                "group {group:?} version 1, {count} members, signed by {}, written to {}",
                hex(&membership.signer),
                out.display()
            );
        }
        ElectionCli::Token { founder, group, key, priority, expires_version, out } => {
            let founder = load_founder(&founder)?;
            let node = parse_key(&key)?;
            let token = JoinToken::sign(&founder, &group, node, priority, expires_version);
            write_hex(&out, &allium_engine::wire::encode_plain(&token))?;
            eprintln!(
                "join token for node {} in group {group:?} (priority {priority}), written to {}",
                NodeId::from_public_key(&node).to_hex(),
                out.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_parse_and_bad_ones_are_refused() {
        let key = "ab".repeat(32);
        let m = parse_member(&format!("{key}@127.0.0.1:7400:200")).unwrap();
        assert_eq!((m.signing_key, m.addr.port(), m.priority), ([0xab; 32], 7400, 200));
        assert_eq!(m.id, NodeId::from_public_key(&[0xab; 32]));
        assert_eq!(parse_member(&format!("{key}@[::1]:7400:5")).unwrap().addr.port(), 7400);
        assert!(parse_member(&format!("{key}@127.0.0.1:7400")).is_err());
        assert!(parse_member(&format!("{key}@127.0.0.1:7400:256")).is_err());
        assert!(parse_member("abc@127.0.0.1:7400:1").is_err());
        assert!(parse_member(&format!("{key}127.0.0.1:7400:1")).is_err());
    }

    #[test]
    fn founder_secrets_are_private_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("founder.key");
        let public = founder_key(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(hex(&load_founder(&path).unwrap().public().signing_key), public);
        assert!(founder_key(&path).is_err(), "never overwrites a secret");
    }
}
