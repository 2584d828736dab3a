//! Seeds for the module targets, from real data:
//! * `hostile_card`: the answers an honest simulated card gives to the
//!   target's own drive (demo token, and factory token), recorded as frames;
//!   each run must reach every decryption (PKCS#1, OAEP, raw) and the SO's
//!   logins, or the fuzzer would start short of them;
//! * `x509_fields`: the demo and attestation certificates;
//! * `p11_template`: templates and mechanisms like the ones clients send.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example make_module_corpus`

use apdu::transport::{Link, TransactionBody, Transport, TransportError};
use cryptoki_sys::*;
use std::path::Path;
use std::sync::{Arc, Mutex};
use ukey_fuzz::frames;
use ukey_fuzz::sim::{state, Start};

struct Recording {
    card: ukey_sim::SimCard,
    answers: Vec<Vec<u8>>,
}

struct RecLink<'a>(&'a mut Recording);

impl Link for RecLink<'_> {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let a = self.0.card.transmit(apdu)?;
        self.0.answers.push(a.clone());
        Ok(a)
    }
}

struct RecTransport(Arc<Mutex<Recording>>);

impl Transport for RecTransport {
    fn atr(&self) -> Vec<u8> {
        ukey_sim::ATR.to_vec()
    }
    fn exclusive(&mut self, body: &mut TransactionBody<'_>) -> Result<(), apdu::Error> {
        let mut r = self.0.lock().unwrap();
        body(&mut RecLink(&mut r))
    }
    fn reset(&mut self) -> Result<(), apdu::Error> {
        Ok(())
    }
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    std::env::set_var("UKEY_NO_PCSC", "1");
    std::env::remove_var("UKEY_SIM");
    for start in [Start::Demo, Start::DemoDefaultKey, Start::Factory] {
        let rec = Arc::new(Mutex::new(Recording {
            card: ukey_sim::SimCard::new(state(start).persistent.clone()),
            answers: Vec::new(),
        }));
        let r = rec.clone();
        ukey_pkcs11::testing::clear_readers();
        ukey_pkcs11::testing::add_reader(
            "honest",
            Arc::new(move || Ok(Box::new(RecTransport(r.clone())) as Box<dyn Transport>)),
        );
        let report = ukey_pkcs11::testing::drive_application();
        // Seeds that get all the way through: every decryption and the
        // SO's logins (the default management key only where it is set).
        let keys = start != Start::Factory;
        assert!(
            report.user_logins == 1 && report.so_puk_logins == 1 && report.pins_reset == 1,
            "{start:?}: {report:?}"
        );
        assert!(
            !keys
                || (
                    report.decrypted_pkcs1,
                    report.decrypted_oaep,
                    report.decrypted_raw
                ) == (1, 1, 1),
            "{start:?}: {report:?}"
        );
        assert_eq!(
            report.so_management_key_logins,
            u32::from(start != Start::Demo),
            "{start:?}: {report:?}"
        );
        println!("hostile_card: {start:?} reaches {report:?}");
        let answers = std::mem::take(&mut rec.lock().unwrap().answers);
        let seed = frames::encode(answers.iter().map(Vec::as_slice));
        write(
            &root.join("hostile_card"),
            &format!("honest-{start:?}").to_lowercase(),
            &seed,
        );
        println!("hostile_card: {start:?}, {} answers", answers.len());
    }
    // Certificates as the card holds them.
    let p = &state(Start::Demo).persistent;
    for (tag, content) in &p.objects {
        if let Ok(Some(c)) = apdu::piv::CertContainer::parse(content) {
            write(&root.join("x509_fields"), &format!("cert-{tag:x}"), &c.der);
        }
    }
    // Templates and mechanisms: selector, then (type u32, flags, len, value)...
    let attr = |kind: CK_ATTRIBUTE_TYPE, value: &[u8]| {
        let mut v = (kind as u32).to_be_bytes().to_vec();
        v.push(0);
        v.push(value.len() as u8);
        v.extend_from_slice(value);
        v
    };
    let class_cert = (CKO_CERTIFICATE as CK_ULONG).to_ne_bytes();
    let class_key = (CKO_PRIVATE_KEY as CK_ULONG).to_ne_bytes();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    for (name, attrs, mech, shape) in [
        (
            "find-cert-by-id",
            vec![attr(CKA_CLASS, &class_cert), attr(CKA_ID, &[1])],
            1u8,
            0u8,
        ),
        (
            "find-key-sign",
            vec![attr(CKA_CLASS, &class_key), attr(CKA_SIGN, &[1])],
            6,
            0,
        ),
        ("pss", vec![attr(CKA_ID, &[2])], 2, 1),
        ("oaep-label", vec![attr(CKA_LABEL, b"PIV AUTH key")], 5, 2),
        (
            "ecdh",
            vec![attr(CKA_CLASS, &(CKO_SECRET_KEY as CK_ULONG).to_ne_bytes())],
            9,
            3,
        ),
    ] {
        let mut v = vec![attrs.len() as u8];
        for a in attrs {
            v.extend(a);
        }
        v.extend_from_slice(&[3, 0, 1]); // fill answers
        v.push(mech);
        v.push(shape);
        v.extend_from_slice(&[0x20; 40]);
        cases.push((name, v));
    }
    for (name, data) in cases {
        write(&root.join("p11_template"), name, &data);
    }
    println!("seeds written under {}", root.display());
}
