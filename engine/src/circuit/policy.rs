//! Exit policies: which destinations a relay lets streams leave to.
//!
//! A policy is an ordered list of rules in the style of Tor's
//! `ExitPolicy`; the first rule that matches a destination decides, and a
//! destination no rule matches is refused. Rules are written as
//! `accept HOST:PORTS` or `reject HOST:PORTS`, where `HOST` is `*`, an exact
//! host name or IP address, or `*.suffix` (any name ending in `.suffix`),
//! and `PORTS` is `*`, a port, or `LOW-HIGH`.
//!
//! The engine checks the host name the client asked for; a driver that
//! resolves the name checks the resolved address again with
//! [`ExitPolicy::allows`] before it connects, so a name that resolves into
//! a refused range is still refused.

use core::fmt;
use core::str::FromStr;

/// Most rules a policy may hold (descriptors carry the policy).
pub const MAX_RULES: usize = 64;
/// Longest host pattern, in bytes.
pub const MAX_HOST_PATTERN: usize = 253;

/// Whether a rule lets a stream out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum Action {
    /// The destination is allowed.
    Accept,
    /// The destination is refused.
    Reject,
}

/// Which hosts a rule covers.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum HostPattern {
    /// Every host.
    Any,
    /// Exactly this name or address (compared case-insensitively).
    Exact(String),
    /// Any name ending in `.` + this suffix.
    Suffix(String),
}

/// One `accept|reject HOST:PORTS` rule.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Rule {
    /// Accept or reject.
    pub action: Action,
    /// The hosts covered.
    pub host: HostPattern,
    /// First port covered.
    pub port_min: u16,
    /// Last port covered.
    pub port_max: u16,
}

/// An ordered list of rules; the first match decides, no match refuses.
#[derive(Clone, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct ExitPolicy {
    /// The rules, in order.
    pub rules: Vec<Rule>,
}

/// Why a policy rule did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The rule is not `accept|reject HOST:PORTS`.
    #[error("expected \"accept|reject HOST:PORTS\", got {0:?}")]
    Syntax(String),
    /// The port part is not `*`, `N` or `LOW-HIGH` with LOW <= HIGH.
    #[error("bad port range {0:?}")]
    Ports(String),
    /// The host pattern is empty, too long or not a host name.
    #[error("bad host pattern {0:?}")]
    Host(String),
    /// More than [`MAX_RULES`] rules.
    #[error("more than {MAX_RULES} rules")]
    TooManyRules,
}

impl ExitPolicy {
    /// The policy of a relay that is not an exit: refuses everything.
    pub fn reject_all() -> Self {
        ExitPolicy { rules: Vec::new() }
    }

    /// A policy that accepts every destination.
    pub fn accept_all() -> Self {
        ExitPolicy {
            rules: vec![Rule { action: Action::Accept, host: HostPattern::Any, port_min: 0, port_max: u16::MAX }],
        }
    }

    /// Parses rules such as `["accept *.internal:80", "reject *:*"]`.
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<Self, PolicyError> {
        if rules.len() > MAX_RULES {
            return Err(PolicyError::TooManyRules);
        }
        let rules = rules.iter().map(|r| r.as_ref().parse()).collect::<Result<Vec<Rule>, _>>()?;
        Ok(ExitPolicy { rules })
    }

    /// Whether a stream to `host:port` may leave here.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.rules.iter().find(|rule| rule.matches(host, port)).is_some_and(|rule| rule.action == Action::Accept)
    }

    /// Whether some destination on `port` (any host) may leave here; used by
    /// path selection when only the port is known to matter.
    pub fn allows_some_host_on(&self, port: u16) -> bool {
        for rule in &self.rules {
            if !(rule.port_min..=rule.port_max).contains(&port) {
                continue;
            }
            match (rule.action, &rule.host) {
                (Action::Accept, _) => return true,
                (Action::Reject, HostPattern::Any) => return false,
                (Action::Reject, _) => continue,
            }
        }
        false
    }

    /// Whether the policy lets anything out at all (the relay is an exit).
    pub fn is_exit(&self) -> bool {
        self.rules.iter().any(|r| r.action == Action::Accept)
    }

    /// Checks the structural limits a decoded (peer-supplied) policy must meet.
    pub fn is_well_formed(&self) -> bool {
        self.rules.len() <= MAX_RULES
            && self.rules.iter().all(|r| {
                r.port_min <= r.port_max
                    && match &r.host {
                        HostPattern::Any => true,
                        HostPattern::Exact(h) | HostPattern::Suffix(h) => valid_host(h),
                    }
            })
    }
}

impl Rule {
    fn matches(&self, host: &str, port: u16) -> bool {
        if !(self.port_min..=self.port_max).contains(&port) {
            return false;
        }
        match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(name) => name.eq_ignore_ascii_case(host),
            HostPattern::Suffix(suffix) => {
                host.len() > suffix.len() + 1 && {
                    let (head, tail) = host.split_at(host.len() - suffix.len());
                    head.ends_with('.') && tail.eq_ignore_ascii_case(suffix)
                }
            }
        }
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_HOST_PATTERN
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

impl FromStr for Rule {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Self, PolicyError> {
        let syntax = || PolicyError::Syntax(text.to_string());
        let (action, target) = text.trim().split_once(char::is_whitespace).ok_or_else(syntax)?;
        let action = match action {
            "accept" => Action::Accept,
            "reject" => Action::Reject,
            _ => return Err(syntax()),
        };
        let target = target.trim();
        // The port follows the last colon, so IPv6 hosts are written in brackets.
        let (host, ports) = target.rsplit_once(':').ok_or_else(syntax)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = match host {
            "*" => HostPattern::Any,
            h if h.starts_with("*.") => HostPattern::Suffix(h[2..].to_ascii_lowercase()),
            h => HostPattern::Exact(h.to_ascii_lowercase()),
        };
        if let HostPattern::Exact(h) | HostPattern::Suffix(h) = &host
            && !valid_host(h)
        {
            return Err(PolicyError::Host(h.clone()));
        }
        let bad_ports = || PolicyError::Ports(ports.to_string());
        let (port_min, port_max) = match ports {
            "*" => (0, u16::MAX),
            p => match p.split_once('-') {
                Some((lo, hi)) => (lo.parse().map_err(|_| bad_ports())?, hi.parse().map_err(|_| bad_ports())?),
                None => {
                    let port = p.parse().map_err(|_| bad_ports())?;
                    (port, port)
                }
            },
        };
        if port_min > port_max {
            return Err(bad_ports());
        }
        Ok(Rule { action, host, port_min, port_max })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            Action::Accept => "accept",
            Action::Reject => "reject",
        };
        let host = match &self.host {
            HostPattern::Any => "*".to_string(),
            HostPattern::Exact(h) if h.contains(':') => format!("[{h}]"),
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Suffix(s) => format!("*.{s}"),
        };
        match (self.port_min, self.port_max) {
            (0, u16::MAX) => write!(f, "{action} {host}:*"),
            (a, b) if a == b => write!(f, "{action} {host}:{a}"),
            (a, b) => write!(f, "{action} {host}:{a}-{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_decides_and_no_match_refuses() {
        let p = ExitPolicy::parse(&["reject *.evil.internal:*", "accept *.internal:80-443", "accept 127.0.0.1:8080"])
            .unwrap();
        assert!(p.allows("files.internal", 80));
        assert!(p.allows("FILES.Internal", 443));
        assert!(!p.allows("files.internal", 22));
        assert!(!p.allows("x.evil.internal", 80));
        assert!(!p.allows("internal", 80), "a suffix needs a label in front");
        assert!(p.allows("127.0.0.1", 8080));
        assert!(!p.allows("example.com", 80));
        assert!(p.is_exit());
        assert!(p.allows_some_host_on(80));
        assert!(!p.allows_some_host_on(22));
        assert!(!ExitPolicy::reject_all().is_exit());
        assert!(ExitPolicy::accept_all().allows("anything", 1));
    }

    #[test]
    fn rules_round_trip_through_text_and_bad_rules_are_refused() {
        for text in ["accept *:*", "reject *.onion:1-1024", "accept [::1]:80", "accept host-a.internal:8080"] {
            let rule: Rule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
        }
        assert!(matches!("allow *:80".parse::<Rule>(), Err(PolicyError::Syntax(_))));
        assert!(matches!("accept *:90-80".parse::<Rule>(), Err(PolicyError::Ports(_))));
        assert!(matches!("accept *:http".parse::<Rule>(), Err(PolicyError::Ports(_))));
        assert!(matches!("accept a/b:80".parse::<Rule>(), Err(PolicyError::Host(_))));
        assert!(matches!(ExitPolicy::parse(&vec!["accept *:*"; MAX_RULES + 1]), Err(PolicyError::TooManyRules)));
    }
}
