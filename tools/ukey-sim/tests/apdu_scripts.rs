//! APDU-script tier: each `tests/scripts/NAME.apdu` file is one case of raw
//! command APDUs (`>`) and the responses the card must give (`<`), run
//! against a fresh simulated card as a separate test.
//!
//! Response patterns are hex bytes; `??` matches any one byte and a single
//! `*` any run of bytes. Directives: `@demo` (start from a demo token),
//! `@serial N`.

use std::path::PathBuf;
use std::sync::OnceLock;
use ukey_sim::state::Persistent;
use ukey_sim::SimCard;

fn script_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scripts")
}

fn demo_state() -> Persistent {
    static DEMO: OnceLock<Persistent> = OnceLock::new();
    DEMO.get_or_init(|| {
        let mut p = Persistent::factory(4242);
        let ca = ukey_sim::ca::Ca::new("CN=Script CA").unwrap();
        ukey_sim::demo::provision(&mut p, &ca, &ukey_sim::demo::DemoOptions::default()).unwrap();
        p
    })
    .clone()
}

#[derive(Debug)]
enum Pat {
    Byte(u8),
    Any,
    Rest,
}

fn parse_hex(s: &str) -> Vec<u8> {
    let clean: String = s.split_whitespace().collect();
    hex::decode(&clean).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

fn parse_pattern(s: &str) -> Vec<Pat> {
    s.split_whitespace()
        .map(|t| match t {
            "??" => Pat::Any,
            "*" => Pat::Rest,
            h => Pat::Byte(u8::from_str_radix(h, 16).unwrap_or_else(|_| panic!("bad byte {h:?}"))),
        })
        .collect()
}

fn matches(pat: &[Pat], got: &[u8]) -> bool {
    fn exact(p: &[Pat], g: &[u8]) -> bool {
        p.len() == g.len()
            && p.iter().zip(g).all(|(p, b)| match p {
                Pat::Byte(x) => x == b,
                Pat::Any => true,
                Pat::Rest => false,
            })
    }
    match pat.iter().position(|p| matches!(p, Pat::Rest)) {
        None => exact(pat, got),
        Some(i) => {
            let (head, tail) = (&pat[..i], &pat[i + 1..]);
            got.len() >= head.len() + tail.len()
                && exact(head, &got[..head.len()])
                && exact(tail, &got[got.len() - tail.len()..])
        }
    }
}

fn run_script(name: &str) {
    let path = script_dir().join(format!("{name}.apdu"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut state = Persistent::factory(1);
    let mut card: Option<SimCard> = None;
    let mut pending: Option<(usize, Vec<u8>, Vec<u8>)> = None;
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(directive) = line.strip_prefix('@') {
            assert!(card.is_none(), "{name}:{line_no}: directives go first");
            let mut it = directive.split_whitespace();
            match (it.next(), it.next()) {
                (Some("demo"), None) => state = demo_state(),
                (Some("serial"), Some(s)) => state.serial = s.parse().expect("serial"),
                _ => panic!("{name}:{line_no}: unknown directive {line}"),
            }
            continue;
        }
        let card = card.get_or_insert_with(|| SimCard::new(state.clone()));
        if let Some(cmd) = line.strip_prefix('>') {
            assert!(pending.is_none(), "{name}:{line_no}: two commands in a row");
            let cmd = parse_hex(cmd);
            let got = card
                .transmit(&cmd)
                .unwrap_or_else(|e| panic!("{name}:{line_no}: {e}"));
            pending = Some((line_no, cmd, got));
        } else if let Some(expect) = line.strip_prefix('<') {
            let (cmd_line, cmd, got) = pending
                .take()
                .unwrap_or_else(|| panic!("{name}:{line_no}: response without command"));
            assert!(
                matches(&parse_pattern(expect), &got),
                "{name}:{cmd_line}: > {}\n expected < {}\n      got < {}",
                hex::encode_upper(&cmd),
                expect.trim(),
                hex::encode_upper(&got)
            );
        } else {
            panic!("{name}:{line_no}: lines start with >, <, @ or #");
        }
    }
    assert!(
        pending.is_none(),
        "{name}: last command has no expected response"
    );
}

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        const ALL: &[&str] = &[$(stringify!($name)),*];
        $( #[test] fn $name() { run_script(stringify!($name)); } )*
    };
}

scripts!(
    select_rid,
    select_full_aid,
    select_other_applet,
    not_selected,
    get_version_and_serial,
    get_data_discovery,
    get_data_short_le_gives_61xx,
    get_response_without_pending,
    get_data_missing,
    get_data_bad_p1p2,
    get_data_printed_needs_pin,
    put_data_without_management_key,
    chained_put_data_fails_on_its_last_piece,
    verify_counts_down_and_blocks,
    verify_success_resets_counter,
    verify_bad_length_and_reference,
    change_pin_wrong_old_and_bad_new,
    reset_retry_counter,
    management_key_wrong_algorithm_or_template,
    sign_needs_pin,
    sign_with_missing_key_or_wrong_algorithm,
    generate_without_management_key,
    metadata_of_pin_and_empty_slot,
    get_challenge,
    reset_refused_unless_blocked,
    move_and_attest_refusals,
    unknown_instruction_class_and_malformed,
);

#[test]
fn every_script_file_is_a_test() {
    let mut files: Vec<String> = std::fs::read_dir(script_dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension()? == "apdu").then_some(stem)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = ALL.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "add new scripts to the scripts! list");
}

#[test]
fn pattern_matching_itself() {
    assert!(matches(&parse_pattern("90 00"), &[0x90, 0]));
    assert!(!matches(&parse_pattern("90 00"), &[0x90, 1]));
    assert!(matches(
        &parse_pattern("7C * 90 00"),
        &[0x7C, 1, 2, 0x90, 0]
    ));
    assert!(matches(&parse_pattern("7C * 90 00"), &[0x7C, 0x90, 0]));
    assert!(!matches(&parse_pattern("7C * 90 00"), &[0x7C, 0]));
    assert!(matches(&parse_pattern("?? 90 00"), &[5, 0x90, 0]));
}
