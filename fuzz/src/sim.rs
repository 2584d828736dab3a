//! `ukey-sim` for fuzzing: starting states made once per process, a scratch
//! state file, the host actions a fuzzer cannot perform by itself, and the
//! consistency checks of a state file.

use apdu::piv::{Algorithm, ManagementKey, PinPolicy, Slot, TouchPolicy};
use apdu::transport::{Link, TransportError};
use apdu::{ParsedCommand, Session};
use std::path::PathBuf;
use std::sync::OnceLock;
use ukey_sim::applet::MAX_OBJECT_LEN;
use ukey_sim::demo::{self, DemoOptions};
use ukey_sim::profile::Profile;
use ukey_sim::state::Persistent;
use ukey_sim::SimCard;

/// The states a run can start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Factory-fresh, AES-192 management key (firmware 5.7).
    Factory,
    /// Factory-fresh, 3DES management key (earlier firmware).
    Factory3des,
    /// Demo token with a PIN-protected management key (what users have).
    Demo,
    /// Demo token that kept the default management key.
    DemoDefaultKey,
    /// The demo token on the other card profiles (YubiKey 5.4 and 4, a
    /// plain PIV card, a third-party applet): the applet's profile branches.
    DemoYk54,
    DemoYk4,
    DemoGeneric,
    DemoCompat,
}

impl Start {
    /// New starts go at the end: a seed's selector byte keeps its meaning.
    pub const ALL: [Start; 8] = [
        Start::Factory,
        Start::Factory3des,
        Start::Demo,
        Start::DemoDefaultKey,
        Start::DemoYk54,
        Start::DemoYk4,
        Start::DemoGeneric,
        Start::DemoCompat,
    ];

    /// The start state a selector byte picks.
    pub fn from_byte(b: u8) -> Start {
        Self::ALL[usize::from(b) % Self::ALL.len()]
    }

    pub fn to_byte(self) -> u8 {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) as u8
    }
}

/// Keys of the fuzz demo token: EC keys (cheap to make) and one RSA-1024 so
/// the RSA paths are covered without multi-second key generation.
pub fn demo_keys() -> Vec<(Slot, Algorithm)> {
    vec![
        (Slot::Authentication, Algorithm::EccP256),
        (Slot::Signature, Algorithm::EccP384),
        (Slot::KeyManagement, Algorithm::Rsa1024),
        (Slot::CardAuthentication, Algorithm::EccP256),
    ]
}

fn make(start: Start) -> Persistent {
    match start {
        Start::Factory => Persistent::factory(12_345_678),
        Start::Factory3des => Persistent::factory_with(12_345_679, Algorithm::Tdes),
        Start::Demo | Start::DemoDefaultKey => {
            let mut p = Persistent::factory(12_345_680);
            let ca = ukey_sim::ca::Ca::new(demo::DEMO_CA_SUBJECT).expect("demo CA");
            let opts = DemoOptions {
                keys: demo_keys(),
                protect_management_key: start == Start::Demo,
                ..DemoOptions::default()
            };
            demo::provision(&mut p, &ca, &opts).expect("demo provisioning");
            p
        }
        Start::DemoYk54 | Start::DemoYk4 | Start::DemoGeneric | Start::DemoCompat => {
            let profile = match start {
                Start::DemoYk54 => Profile::Yk54,
                Start::DemoYk4 => Profile::Yk4,
                Start::DemoGeneric => Profile::Generic,
                _ => Profile::Compat,
            };
            demo::with_profile(&make(Start::Demo), profile).expect("demo on a profile")
        }
    }
}

/// A start state, made once per process: the state and its state file bytes.
pub struct StartState {
    pub persistent: Persistent,
    pub json: Vec<u8>,
}

/// The state `start` names, made on first use in this process (and checked).
pub fn state(start: Start) -> &'static StartState {
    static STATES: OnceLock<Vec<StartState>> = OnceLock::new();
    let states = STATES.get_or_init(|| {
        // Every input opens a fresh card from the same few keys.
        ukey_sim::keys::remember_decoded_keys();
        Start::ALL
            .iter()
            .map(|s| {
                let persistent = make(*s);
                check_consistent(&persistent, None);
                let json = serde_json::to_vec_pretty(&persistent).expect("state serialises");
                StartState { persistent, json }
            })
            .collect()
    });
    &states[usize::from(start.to_byte())]
}

/// This process's scratch state file, on tmpfs where there is one: the card
/// fsyncs on every change.
pub fn scratch_state_path() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        remove_stale_scratch_dirs(&base);
        let dir = base.join(format!("{SCRATCH_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    });
    dir.join("card.json")
}

const SCRATCH_PREFIX: &str = "ukey-fuzz-";

/// Scratch directories of fuzz processes that are gone (libFuzzer exits
/// without running destructors, so each process cleans up after the dead).
fn remove_stale_scratch_dirs(base: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SCRATCH_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A link straight to a [`SimCard`] (as `ukey-sim serve` passes APDUs on).
pub struct CardLink<'a>(pub &'a mut SimCard);

impl Link for CardLink<'_> {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.0.transmit(apdu)
    }
}

/// The host authenticates with the card's current management key, through
/// the `apdu` crate as the module would. The fuzzer cannot do this itself:
/// the card's witness is random. Failures (not selected, wrong state) are
/// part of the game and ignored.
pub fn host_authenticates(card: &mut SimCard) {
    let mk = &card.persistent().management_key;
    let Some(key) =
        Algorithm::from_code(mk.algorithm).and_then(|alg| ManagementKey::new(alg, &mk.key.0).ok())
    else {
        return;
    };
    let _ = Session::new(&mut CardLink(card), false).authenticate(&key);
}

/// What the simulated host declines to send: generating RSA keys larger
/// than 1024 bits (seconds each, and the same code path as RSA-1024), and
/// more than a few RSA-1024 keys per run. Conservative: it watches every
/// GENERATE piece since the last unchained one, so chaining cannot sneak a
/// template past it.
#[derive(Default)]
pub struct HostFilter {
    generate_chain: Vec<u8>,
    rsa_generations: u32,
}

/// RSA-1024 generations allowed per run.
const MAX_RSA_GENERATIONS: u32 = 2;

impl HostFilter {
    /// Whether the host sends `apdu`.
    pub fn allows(&mut self, apdu: &[u8]) -> bool {
        let Ok(cmd) = ParsedCommand::parse(apdu) else {
            return true;
        };
        if cmd.ins != apdu::piv::ins::GENERATE_ASYMMETRIC {
            return true;
        }
        if cmd.cla & 0x10 != 0 {
            self.generate_chain.extend_from_slice(cmd.data);
            return true;
        }
        let mut template = std::mem::take(&mut self.generate_chain);
        template.extend_from_slice(cmd.data);
        let asks = |codes: &[u8]| {
            template
                .windows(3)
                .any(|w| w[0] == 0x80 && w[1] == 0x01 && codes.contains(&w[2]))
        };
        let big_rsa =
            [Algorithm::Rsa2048, Algorithm::Rsa3072, Algorithm::Rsa4096].map(|a| a.code());
        if asks(&big_rsa) {
            return false;
        }
        if asks(&[Algorithm::Rsa1024.code()]) {
            self.rsa_generations += 1;
            return self.rsa_generations <= MAX_RSA_GENERATIONS;
        }
        true
    }

    /// A power cycle drops the card's chaining state; so does the host's.
    pub fn power_cycle(&mut self) {
        self.generate_chain.clear();
    }
}

/// The longest response data a command may get, by its Le (0 for APDUs
/// the card cannot parse: they get a bare status word).
pub fn max_response_data(apdu: &[u8]) -> usize {
    match ParsedCommand::parse(apdu) {
        Ok(c) => {
            let max = if c.extended { 65_536 } else { 256 };
            c.le.unwrap_or(max).min(max)
        }
        Err(_) => 0,
    }
}

/// Check the card's state file after a run: it holds exactly what the card
/// has in memory, it loads (the card opens again from it), and it is
/// consistent. Returns the card opened anew. Panics with the reason otherwise.
pub fn check_state_file(card: SimCard, start: &StartState) -> SimCard {
    let path = card
        .path()
        .expect("the card has a state file")
        .to_path_buf();
    let file = std::fs::read(&path).expect("the state file is there");
    let memory = serde_json::to_vec_pretty(card.persistent()).expect("state serialises");
    assert!(
        file == memory,
        "the state file differs from the card's memory"
    );
    drop(card);
    let again = SimCard::open(&path).unwrap_or_else(|e| panic!("state file does not load: {e}"));
    check_consistent(again.persistent(), Some(&start.persistent));
    again
}

/// The invariants of a card's persistent state. Key entries found unchanged
/// in `known_good` (already checked) are not decoded again: decoding is
/// most of the cost of a run.
pub fn check_consistent(p: &Persistent, known_good: Option<&Persistent>) {
    for (name, s) in [("PIN", &p.pin), ("PUK", &p.puk)] {
        assert!(
            s.tries_left <= s.tries_total,
            "{name}: {} tries left of {}",
            s.tries_left,
            s.tries_total
        );
        assert_eq!(s.value.0.len(), 8, "{name} is not 8 padded bytes");
    }
    let mk = &p.management_key;
    let alg = Algorithm::from_code(mk.algorithm)
        .unwrap_or_else(|| panic!("management key algorithm {:02X}", mk.algorithm));
    assert!(
        ManagementKey::new(alg, &mk.key.0).is_ok(),
        "management key does not fit its algorithm {alg}"
    );
    for (slot, entry) in &p.keys {
        let checked = known_good.is_some_and(|k| {
            k.keys.values().any(|e| {
                e.algorithm == entry.algorithm && e.private_key.0[..] == entry.private_key.0[..]
            })
        });
        let alg = entry
            .algorithm()
            .unwrap_or_else(|| panic!("key {slot}: algorithm {:02X}", entry.algorithm));
        if !checked {
            let key = entry
                .key()
                .unwrap_or_else(|| panic!("key {slot} ({alg}) does not decode"));
            assert_eq!(key.algorithm(), alg, "key {slot}: stored algorithm");
        }
        assert!(
            PinPolicy::from_code(entry.pin_policy).is_some()
                && TouchPolicy::from_code(entry.touch_policy).is_some(),
            "key {slot}: policies {:02X} {:02X}",
            entry.pin_policy,
            entry.touch_policy
        );
        let parsed = u8::from_str_radix(slot, 16)
            .ok()
            .and_then(Slot::from_key_ref);
        assert!(
            parsed.is_some(),
            "key stored under {slot:?}, not a key slot"
        );
    }
    for (tag, content) in &p.objects {
        assert!(
            content.len() <= MAX_OBJECT_LEN,
            "object {tag:X} holds {} bytes",
            content.len()
        );
    }
}
