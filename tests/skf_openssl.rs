//! OpenSSL 3 judges the SKF soft token's cryptography: SM2 signatures
//! over e = SM3(Z‖M) (`pkeyutl -verify -rawin -digest sm3 -pkeyopt
//! distid:1234567812345678`), the demo certificates (`openssl verify`), a
//! request signed on the token (`openssl req -verify`), SM2 encryption
//! both ways and SM4 (`openssl enc`), and the dual-certificate flow: the
//! CA's envelope imports, and a session key OpenSSL encrypted to the
//! encryption certificate opens on the token.

use der::{Decode, Encode};
use std::path::Path;
use std::ptr::{null, null_mut};
use std::str::FromStr;
use ukey_tests::skf;
use ukey_tests::skf::code::*;
use ukey_tests::skf::*;
use ukey_tests::{require_tools, run_ok};

const DISTID: &str = "distid:1234567812345678";

fn api() -> Api {
    Api::load(&library())
}

fn connect(api: &Api, name: &str) -> H {
    let mut h: H = null_mut();
    assert_eq!(skf!(api.ConnectDev(c(name).as_ptr(), &mut h)), SAR_OK);
    h
}

fn login(api: &Api, h: H, app: &str, pin: &str) -> H {
    let mut ha: H = null_mut();
    assert_eq!(
        skf!(api.OpenApplication(h, c(app).as_ptr(), &mut ha)),
        SAR_OK
    );
    let mut left: U = 0;
    assert_eq!(
        skf!(api.VerifyPIN(ha, USER_TYPE, c(pin).as_ptr(), &mut left)),
        SAR_OK
    );
    ha
}

fn container(api: &Api, ha: H, name: &str) -> H {
    let mut hc: H = null_mut();
    assert_eq!(
        skf!(api.OpenContainer(ha, c(name).as_ptr(), &mut hc)),
        SAR_OK
    );
    hc
}

fn public_key(api: &Api, hc: H, sign: bool) -> ECCPublicKeyBlob {
    let mut blob: ECCPublicKeyBlob = zeroed();
    let mut n: U = 132;
    assert_eq!(
        skf!(api.ExportPublicKey(
            hc,
            i32::from(sign),
            (&mut blob as *mut ECCPublicKeyBlob).cast(),
            &mut n
        )),
        SAR_OK
    );
    blob
}

fn certificate(api: &Api, hc: H, sign: bool) -> Vec<u8> {
    let mut n: U = 0;
    assert_eq!(
        skf!(api.ExportCertificate(hc, i32::from(sign), null_mut(), &mut n)),
        SAR_OK
    );
    let mut v = vec![0u8; n as usize];
    assert_eq!(
        skf!(api.ExportCertificate(hc, i32::from(sign), v.as_mut_ptr(), &mut n)),
        SAR_OK
    );
    v
}

/// e = SM3(Z‖M) through the token's DigestInit with the public key.
fn e_of(api: &Api, h: H, key: &ECCPublicKeyBlob, id: Option<&[u8]>, msg: &[u8]) -> [u8; 32] {
    let mut hh: H = null_mut();
    let (idp, idl) = id.map_or((null(), 0), |i| (i.as_ptr(), i.len() as U));
    assert_eq!(
        skf!(api.DigestInit(h, SGD_SM3, key, idp, idl, &mut hh)),
        SAR_OK
    );
    let mut e = [0u8; 32];
    let mut n: U = 32;
    assert_eq!(
        skf!(api.Digest(hh, msg.as_ptr(), msg.len() as U, e.as_mut_ptr(), &mut n)),
        SAR_OK
    );
    assert_eq!(skf!(api.CloseHandle(hh)), SAR_OK);
    e
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::write(dir.join(name), data).expect("write");
}

fn pem_cert(der: &[u8]) -> String {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).expect("pem")
}

#[test]
fn ecc_sign_data_over_sm3_z_m_verifies_with_openssl_pkeyutl() {
    require_tools(&["openssl"]);
    isolated(
        "ecc_sign_data_over_sm3_z_m_verifies_with_openssl_pkeyutl",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |dir| {
            let api = api();
            let h = connect(&api, "demo");
            let ha = login(&api, h, "UKEY_APP", "123456");
            let hc = container(&api, ha, "UKEY_CONTAINER");
            let key = public_key(&api, hc, true);
            write(dir, "pub.pem", spki_pem(&point(&key)).as_bytes());
            let msg = b"a purchase order signed on an SKF key";
            write(dir, "msg.txt", msg);
            let e = e_of(&api, h, &key, None, msg);
            assert_eq!(
                e,
                e_of(&api, h, &key, Some(b"1234567812345678"), msg),
                "default ID"
            );
            let mut sig: ECCSignatureBlob = zeroed();
            assert_eq!(skf!(api.ECCSignData(hc, e.as_ptr(), 32, &mut sig)), SAR_OK);
            write(dir, "sig.der", &sig_der(&sig));
            let verify = |msgfile: &str| {
                openssl_ok(
                    dir,
                    &[
                        "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-digest",
                        "sm3", "-pkeyopt", DISTID, "-in", msgfile, "-sigfile", "sig.der",
                    ],
                )
            };
            assert!(verify("msg.txt"), "OpenSSL verifies the token's signature");
            write(dir, "other.txt", b"a different order");
            assert!(!verify("other.txt"));
            // The token's own verification agrees.
            assert_eq!(skf!(api.ECCVerify(h, &key, e.as_ptr(), 32, &sig)), SAR_OK);
            assert_eq!(
                skf!(api.ExtECCVerify(h, &key, e.as_ptr(), 32, &sig)),
                SAR_OK
            );
            let mut e2 = e;
            e2[5] ^= 1;
            assert_eq!(
                skf!(api.ECCVerify(h, &key, e2.as_ptr(), 32, &sig)),
                SAR_FAIL
            );

            // OpenSSL's key and signature the other way round: the token
            // verifies it, and signs with ExtECCSign what OpenSSL verifies.
            openssl(dir, &["genpkey", "-algorithm", "SM2", "-out", "k.pem"]);
            openssl(dir, &["pkey", "-in", "k.pem", "-pubout", "-out", "k.pub"]);
            openssl(
                dir,
                &[
                    "pkeyutl", "-sign", "-inkey", "k.pem", "-rawin", "-digest", "sm3", "-pkeyopt",
                    DISTID, "-in", "msg.txt", "-out", "ossl.sig",
                ],
            );
            let kblob = blob_of_point(&openssl_public_point(dir, "k.pub"));
            let ek = e_of(&api, h, &kblob, None, msg);
            let osig = std::fs::read(dir.join("ossl.sig")).unwrap();
            let sblob = sig_blob_from_der(&osig);
            assert_eq!(
                skf!(api.ExtECCVerify(h, &kblob, ek.as_ptr(), 32, &sblob)),
                SAR_OK
            );
            let mut priv_blob: ECCPrivateKeyBlob = zeroed();
            priv_blob.bit_len = 256;
            priv_blob.private_key[32..].copy_from_slice(&openssl_private_scalar(dir, "k.pem"));
            let mut sig2: ECCSignatureBlob = zeroed();
            assert_eq!(
                skf!(api.ExtECCSign(h, &priv_blob, ek.as_ptr(), 32, &mut sig2)),
                SAR_OK
            );
            write(dir, "sig.der", &sig_der(&sig2));
            assert!(openssl_ok(
                dir,
                &[
                    "pkeyutl", "-verify", "-pubin", "-inkey", "k.pub", "-rawin", "-digest", "sm3",
                    "-pkeyopt", DISTID, "-in", "msg.txt", "-sigfile", "sig.der"
                ],
            ));

            // Plain SM3 (no public key) equals openssl dgst -sm3.
            let mut hh: H = null_mut();
            assert_eq!(
                skf!(api.DigestInit(h, SGD_SM3, null(), null(), 0, &mut hh)),
                SAR_OK
            );
            let mut d = [0u8; 32];
            let mut n: U = 32;
            assert_eq!(
                skf!(api.Digest(hh, msg.as_ptr(), msg.len() as U, d.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            let out = String::from_utf8(openssl(dir, &["dgst", "-sm3", "-r", "msg.txt"])).unwrap();
            assert_eq!(out.split_whitespace().next().unwrap(), hex::encode(d));
        },
    );
}

fn sig_blob_from_der(der: &[u8]) -> ECCSignatureBlob {
    let ints: Vec<der::asn1::UintRef<'_>> = Vec::from_der(der).expect("SM2 signature DER");
    let mut s: ECCSignatureBlob = zeroed();
    let r = ints[0].as_bytes();
    let t = ints[1].as_bytes();
    s.r[64 - r.len()..].copy_from_slice(r);
    s.s[64 - t.len()..].copy_from_slice(t);
    s
}

#[test]
fn the_demo_certificates_verify_with_openssl_and_the_signing_one_is_due_for_renewal() {
    require_tools(&["openssl"]);
    isolated(
        "the_demo_certificates_verify_with_openssl_and_the_signing_one_is_due_for_renewal",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |dir| {
            let api = api();
            let h = connect(&api, "demo");
            let ha = login(&api, h, "UKEY_APP", "123456");
            let hc = container(&api, ha, "UKEY_CONTAINER");
            for (sign, name) in [(true, "sign.pem"), (false, "enc.pem")] {
                write(dir, name, pem_cert(&certificate(&api, hc, sign)).as_bytes());
                let out = openssl(
                    dir,
                    &[
                        "verify",
                        "-CAfile",
                        "skf-demo-ca/ca.pem",
                        "-vfyopt",
                        DISTID,
                        name,
                    ],
                );
                assert!(String::from_utf8_lossy(&out).contains(": OK"));
                let text =
                    String::from_utf8(openssl(dir, &["x509", "-in", name, "-noout", "-text"]))
                        .unwrap();
                assert!(text.contains("SM2-with-SM3"), "{text}");
                assert!(text.contains("ASN1 OID: SM2"), "{text}");
                // The certificate certifies the container's key.
                let cert_pub = openssl(dir, &["x509", "-in", name, "-noout", "-pubkey"]);
                assert_eq!(
                    String::from_utf8(cert_pub).unwrap(),
                    spki_pem(&point(&public_key(&api, hc, sign)))
                );
            }
            // Signing certificate: inside the 90-day renewal window; encryption: not.
            assert!(!openssl_ok(
                dir,
                &["x509", "-in", "sign.pem", "-noout", "-checkend", "7776000"]
            ));
            assert!(openssl_ok(
                dir,
                &["x509", "-in", "sign.pem", "-noout", "-checkend", "86400"]
            ));
            assert!(openssl_ok(
                dir,
                &["x509", "-in", "enc.pem", "-noout", "-checkend", "7776000"]
            ));
            let enc = String::from_utf8(openssl(
                dir,
                &["x509", "-in", "enc.pem", "-noout", "-ext", "keyUsage"],
            ))
            .unwrap();
            assert!(enc.contains("Key Encipherment"), "{enc}");
            let ca = String::from_utf8(openssl(
                dir,
                &["x509", "-in", "skf-demo-ca/ca.pem", "-noout", "-subject"],
            ))
            .unwrap();
            assert!(ca.contains("ukey SM2 Demo CA"), "{ca}");
        },
    );
}

#[test]
fn a_ca_envelope_imports_and_a_key_openssl_encrypted_to_the_certificate_opens_on_the_token() {
    require_tools(&["openssl"]);
    isolated(
        "a_ca_envelope_imports_and_a_key_openssl_encrypted_to_the_certificate_opens_on_the_token",
        &["tok"],
        |dir| {
            init(dir, "tok", &[]);
            // A scratch demo device just to create the demo CA.
            init(dir, "scratch", &["--demo"]);
        },
        |dir| {
            let api = api();
            let h = connect(&api, "tok");
            // Enrolment as a CA client does it: authenticate, create the
            // application and container, make the signing key on the token.
            assert_eq!(dev_auth(&api, h), SAR_OK);
            let mut ha: H = null_mut();
            assert_eq!(
                skf!(api.CreateApplication(
                    h,
                    c("APP").as_ptr(),
                    c("12345678").as_ptr(),
                    10,
                    c("123456").as_ptr(),
                    10,
                    SECURE_ANYONE_ACCOUNT,
                    &mut ha
                )),
                SAR_OK
            );
            let mut left: U = 0;
            assert_eq!(
                skf!(api.VerifyPIN(ha, USER_TYPE, c("123456").as_ptr(), &mut left)),
                SAR_OK
            );
            let mut hc: H = null_mut();
            assert_eq!(
                skf!(api.CreateContainer(ha, c("CON").as_ptr(), &mut hc)),
                SAR_OK
            );
            let mut sign_pub: ECCPublicKeyBlob = zeroed();
            assert_eq!(
                skf!(api.GenECCKeyPair(hc, SGD_SM2_1, &mut sign_pub)),
                SAR_OK
            );

            // A PKCS#10 request signed on the token; OpenSSL checks it.
            let csr = request_signed_on_token(&api, h, hc, &sign_pub, "CN=SKF Test User,O=ukey");
            write(dir, "req.der", &csr);
            openssl(
                dir,
                &[
                    "req", "-verify", "-inform", "DER", "-in", "req.der", "-noout", "-vfyopt",
                    DISTID,
                ],
            );

            // The CA issues the signing certificate and envelopes an encryption pair.
            run_ok(
                std::process::Command::new(ukey_tests::bin("ukey-sim"))
                    .current_dir(dir)
                    .args([
                        "skf",
                        "ca",
                        "issue",
                        "--ca-dir",
                        "skf-demo-ca",
                        "--csr",
                        "req.der",
                        "--out",
                        "sign.pem",
                        "--envelope",
                        "env.bin",
                        "--enc-out",
                        "enc.pem",
                    ]),
            );
            for c in ["sign.pem", "enc.pem"] {
                openssl(
                    dir,
                    &[
                        "verify",
                        "-CAfile",
                        "skf-demo-ca/ca.pem",
                        "-vfyopt",
                        DISTID,
                        c,
                    ],
                );
            }
            let env = std::fs::read(dir.join("env.bin")).unwrap();
            assert_eq!(
                env.len(),
                373 + 15,
                "ENVELOPEDKEYBLOB with a 16-byte Cipher"
            );

            // An envelope whose encrypted key was tampered with is refused
            // (the key must match PubKey) and changes nothing.
            let mut bad = env.clone();
            bad[12 + 40] ^= 1;
            assert_eq!(skf!(api.ImportECCKeyPair(hc, bad.as_ptr())), SAR_INDATAERR);
            let mut n: U = 132;
            let mut buf = [0u8; 132];
            assert_eq!(
                skf!(api.ExportPublicKey(hc, 0, buf.as_mut_ptr(), &mut n)),
                SAR_KEYNOTFOUNTERR
            );
            // Only the container whose signing key it was made for can open it.
            let mut hother: H = null_mut();
            assert_eq!(
                skf!(api.CreateContainer(ha, c("OTHER").as_ptr(), &mut hother)),
                SAR_OK
            );
            let mut other_pub: ECCPublicKeyBlob = zeroed();
            assert_eq!(
                skf!(api.GenECCKeyPair(hother, SGD_SM2_1, &mut other_pub)),
                SAR_OK
            );
            assert_eq!(
                skf!(api.ImportECCKeyPair(hother, env.as_ptr())),
                SAR_HASHNOTEQUALERR
            );
            // Without the user PIN: refused.
            assert_eq!(skf!(api.ClearSecureState(ha)), SAR_OK);
            assert_eq!(
                skf!(api.ImportECCKeyPair(hc, env.as_ptr())),
                SAR_USER_NOT_LOGGED_IN
            );
            assert_eq!(
                skf!(api.VerifyPIN(ha, USER_TYPE, c("123456").as_ptr(), &mut left)),
                SAR_OK
            );
            assert_eq!(skf!(api.ImportECCKeyPair(hc, env.as_ptr())), SAR_OK);
            for (flag, name) in [(1, "sign.pem"), (0, "enc.pem")] {
                let der = ukey_tests::skf::openssl(dir, &["x509", "-in", name, "-outform", "DER"]);
                assert_eq!(
                    skf!(api.ImportCertificate(hc, flag, der.as_ptr(), der.len() as U)),
                    SAR_OK
                );
            }
            let enc_pub = public_key(&api, hc, false);
            let cert_pub = openssl(dir, &["x509", "-in", "enc.pem", "-noout", "-pubkey"]);
            assert_eq!(
                String::from_utf8(cert_pub).unwrap(),
                spki_pem(&point(&enc_pub))
            );
            write(dir, "enc.pub", spki_pem(&point(&enc_pub)).as_bytes());

            // A digital envelope addressed to the encryption certificate:
            // OpenSSL encrypts an SM4 key with SM2 and the data with SM4-CBC;
            // the token imports the key (SKF_ImportSessionKey) and decrypts.
            let k = openssl(dir, &["rand", "16"]);
            write(dir, "k.bin", &k);
            openssl(
                dir,
                &[
                    "pkeyutl", "-encrypt", "-pubin", "-inkey", "enc.pub", "-in", "k.bin", "-out",
                    "k.sm2",
                ],
            );
            let blob = cipher_blob_from_openssl(&std::fs::read(dir.join("k.sm2")).unwrap());
            let msg = b"tender documents, for the encryption certificate's holder only".repeat(3);
            write(dir, "msg.txt", &msg);
            let iv = [0x24u8; 16];
            openssl(
                dir,
                &[
                    "enc",
                    "-sm4-cbc",
                    "-K",
                    &hex::encode(&k),
                    "-iv",
                    &hex::encode(iv),
                    "-in",
                    "msg.txt",
                    "-out",
                    "msg.enc",
                ],
            );
            let ct = std::fs::read(dir.join("msg.enc")).unwrap();
            let mut hk: H = null_mut();
            assert_eq!(
                skf!(api.ImportSessionKey(
                    hc,
                    SGD_SM4_CBC,
                    blob.as_ptr(),
                    blob.len() as U,
                    &mut hk
                )),
                SAR_OK
            );
            let mut p: BlockCipherParam = zeroed();
            p.iv[..16].copy_from_slice(&iv);
            p.iv_len = 16;
            p.padding_type = 1;
            assert_eq!(skf!(api.DecryptInit(hk, p)), SAR_OK);
            let mut out = vec![0u8; ct.len()];
            let mut n = ct.len() as U;
            assert_eq!(
                skf!(api.Decrypt(hk, ct.as_ptr(), ct.len() as U, out.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(&out[..n as usize], &msg[..]);
            // The signing key cannot open it (ImportSessionKey uses the encryption key).
            let mut tampered = blob.clone();
            *tampered.last_mut().unwrap() ^= 1;
            assert_eq!(
                skf!(api.ImportSessionKey(
                    hc,
                    SGD_SM4_CBC,
                    tampered.as_ptr(),
                    tampered.len() as U,
                    &mut hk
                )),
                SAR_HASHNOTEQUALERR
            );
        },
    );
}

fn dev_auth(api: &Api, h: H) -> U {
    let mut rnd = [0u8; 16];
    assert_eq!(skf!(api.GenRandom(h, rnd.as_mut_ptr(), 16)), SAR_OK);
    // The host side with OpenSSL: SM4-ECB of the challenge under the key.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rnd", &rnd);
    let out = openssl(
        dir.path(),
        &[
            "enc",
            "-sm4-ecb",
            "-nopad",
            "-K",
            &hex::encode(b"1234567812345678"),
            "-in",
            "rnd",
        ],
    );
    skf!(api.DevAuth(h, out.as_ptr(), out.len() as U))
}

/// A PKCS#10 request for the container's signing key, signed on the token
/// (e from SKF_DigestInit with the key, signature from SKF_ECCSignData).
fn request_signed_on_token(
    api: &Api,
    h: H,
    hc: H,
    key: &ECCPublicKeyBlob,
    subject: &str,
) -> Vec<u8> {
    use x509_cert::request::{CertReq, CertReqInfo};
    let mut spki_der = hex::decode("3059301306072a8648ce3d020106082a811ccf5501822d034200").unwrap();
    spki_der.extend_from_slice(&point(key));
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: x509_cert::name::Name::from_str(subject).unwrap(),
        public_key: spki::SubjectPublicKeyInfoOwned::from_der(&spki_der).unwrap(),
        attributes: Default::default(),
    };
    let tbs = info.to_der().unwrap();
    let e = e_of(api, h, key, None, &tbs);
    let mut sig: ECCSignatureBlob = zeroed();
    assert_eq!(skf!(api.ECCSignData(hc, e.as_ptr(), 32, &mut sig)), SAR_OK);
    CertReq {
        info,
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::ObjectIdentifier::new_unwrap("1.2.156.10197.1.501"),
            parameters: None,
        },
        signature: der::asn1::BitString::from_bytes(&sig_der(&sig)).unwrap(),
    }
    .to_der()
    .unwrap()
}

#[test]
fn session_keys_sm2_encryption_and_sm4_agree_with_openssl() {
    require_tools(&["openssl"]);
    isolated(
        "session_keys_sm2_encryption_and_sm4_agree_with_openssl",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |dir| {
            let api = api();
            let h = connect(&api, "demo");
            let ha = login(&api, h, "UKEY_APP", "123456");
            let hc = container(&api, ha, "UKEY_CONTAINER");
            openssl(dir, &["genpkey", "-algorithm", "SM2", "-out", "k.pem"]);
            openssl(dir, &["pkey", "-in", "k.pem", "-pubout", "-out", "k.pub"]);
            let kblob = blob_of_point(&openssl_public_point(dir, "k.pub"));

            // ECCExportSessionKey: a new SM4 key, SM2-encrypted to OpenSSL's key.
            let mut cblob = vec![0u8; 164 + 16];
            let mut hk: H = null_mut();
            assert_eq!(
                skf!(api.ECCExportSessionKey(hc, SGD_SM4_ECB, &kblob, cblob.as_mut_ptr(), &mut hk)),
                SAR_OK
            );
            write(dir, "sk.sm2", &openssl_cipher_from_blob(&cblob));
            let k = openssl(
                dir,
                &["pkeyutl", "-decrypt", "-inkey", "k.pem", "-in", "sk.sm2"],
            );
            assert_eq!(k.len(), 16);
            let msg = b"SM4-ECB with PKCS#5 padding, 37 bytes";
            assert_eq!(
                skf!(api.EncryptInit(
                    hk,
                    BlockCipherParam {
                        iv: [0; 32],
                        iv_len: 0,
                        padding_type: 1,
                        feed_bit_len: 0
                    }
                )),
                SAR_OK
            );
            let mut ct = [0u8; 64];
            let mut n: U = 64;
            assert_eq!(
                skf!(api.Encrypt(hk, msg.as_ptr(), msg.len() as U, ct.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(n, 48);
            write(dir, "ct", &ct[..48]);
            let plain = openssl(
                dir,
                &["enc", "-d", "-sm4-ecb", "-K", &hex::encode(&k), "-in", "ct"],
            );
            assert_eq!(plain, msg);

            // ExtECCEncrypt to OpenSSL's key, OpenSSL decrypts; and back.
            let secret = b"an SM2-encrypted secret";
            let mut eblob = vec![0u8; 164 + secret.len()];
            assert_eq!(
                skf!(api.ExtECCEncrypt(
                    h,
                    &kblob,
                    secret.as_ptr(),
                    secret.len() as U,
                    eblob.as_mut_ptr()
                )),
                SAR_OK
            );
            write(dir, "s.sm2", &openssl_cipher_from_blob(&eblob));
            assert_eq!(
                openssl(
                    dir,
                    &["pkeyutl", "-decrypt", "-inkey", "k.pem", "-in", "s.sm2"]
                ),
                secret
            );
            write(dir, "s.txt", secret);
            openssl(
                dir,
                &[
                    "pkeyutl", "-encrypt", "-pubin", "-inkey", "k.pub", "-in", "s.txt", "-out",
                    "o.sm2",
                ],
            );
            let oblob = cipher_blob_from_openssl(&std::fs::read(dir.join("o.sm2")).unwrap());
            let mut pk: ECCPrivateKeyBlob = zeroed();
            pk.bit_len = 256;
            pk.private_key[32..].copy_from_slice(&openssl_private_scalar(dir, "k.pem"));
            let mut n: U = 0;
            assert_eq!(
                skf!(api.ExtECCDecrypt(h, &pk, oblob.as_ptr(), null_mut(), &mut n)),
                SAR_OK
            );
            let mut out = vec![0u8; n as usize];
            assert_eq!(
                skf!(api.ExtECCDecrypt(h, &pk, oblob.as_ptr(), out.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(&out[..n as usize], secret);

            // SM4-CBC and CBC-MAC through SetSymmKey equal OpenSSL's.
            let key = [0x5Au8; 16];
            let iv = [0xA5u8; 16];
            let data = [0x3Cu8; 64];
            write(dir, "data", &data);
            let mut hs: H = null_mut();
            assert_eq!(
                skf!(api.SetSymmKey(h, key.as_ptr(), SGD_SM4_CBC, &mut hs)),
                SAR_OK
            );
            let mut p: BlockCipherParam = zeroed();
            p.iv[..16].copy_from_slice(&iv);
            p.iv_len = 16;
            assert_eq!(skf!(api.EncryptInit(hs, p)), SAR_OK);
            let mut ct = [0u8; 64];
            let mut n: U = 64;
            assert_eq!(
                skf!(api.Encrypt(hs, data.as_ptr(), 64, ct.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            let ossl = openssl(
                dir,
                &[
                    "enc",
                    "-sm4-cbc",
                    "-nopad",
                    "-K",
                    &hex::encode(key),
                    "-iv",
                    &hex::encode(iv),
                    "-in",
                    "data",
                ],
            );
            assert_eq!(&ct[..], &ossl[..]);
            let mut hm: H = null_mut();
            assert_eq!(
                skf!(api.SetSymmKey(h, key.as_ptr(), SGD_SM4_MAC, &mut hs)),
                SAR_OK
            );
            assert_eq!(skf!(api.MacInit(hs, &p, &mut hm)), SAR_OK);
            let mut mac = [0u8; 16];
            let mut n: U = 16;
            assert_eq!(
                skf!(api.Mac(hm, data.as_ptr(), 64, mac.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(&mac[..], &ossl[48..], "CBC-MAC is the last CBC block");
        },
    );
}
