//! Every PKCS#11 entry point, each a one-line shim over a safe function in
//! [`crate::fns`]. Only `C_GetFunctionList`, `C_GetInterfaceList` and
//! `C_GetInterface` are exported (from `lib.rs`); the rest are reached
//! through the function tables built at the end of this file.

use super::ptr::*;
use super::shims;
use crate::error::{Error, Result};
use crate::fns::{crypto, digest, general, keys, object, session, slot};
use cryptoki_sys::*;
use std::ffi::c_void;

/// What an unsupported function answers once the library is initialized.
fn unsupported() -> Result<()> {
    crate::library::get()?;
    Err(Error::FunctionNotSupported)
}

/// Legacy parallel-function calls (§5.20).
fn not_parallel(h: CK_SESSION_HANDLE) -> Result<()> {
    crate::fns::live_session(h)?;
    Err(Error::FunctionNotParallel)
}

shims! {
    /// §5.4.1 C_Initialize.
    fn C_Initialize(args: *mut c_void) unsafe => general::initialize(InInitArgs::new(args));
    /// §5.4.2 C_Finalize.
    fn C_Finalize(reserved: *mut c_void) safe => general::finalize(reserved.is_null());
    /// §5.4.3 C_GetInfo.
    fn C_GetInfo(info: *mut CK_INFO) unsafe => general::get_info(Out::new(info));
    /// §5.4.4 C_GetFunctionList.
    fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) unsafe => super::get_function_list(Out::new(list));
    /// §5.4.5 C_GetInterfaceList.
    fn C_GetInterfaceList(list: *mut CK_INTERFACE, count: *mut CK_ULONG) unsafe => super::get_interface_list(OutArray::new(list, count));
    /// §5.4.6 C_GetInterface.
    fn C_GetInterface(name: *mut CK_UTF8CHAR, version: *mut CK_VERSION, iface: *mut *mut CK_INTERFACE, flags: CK_FLAGS) unsafe => super::get_interface(c_string(name), version.as_ref().copied(), Out::new(iface), flags);
    /// §5.5.1 C_GetSlotList.
    fn C_GetSlotList(present: CK_BBOOL, list: *mut CK_SLOT_ID, count: *mut CK_ULONG) unsafe => slot::get_slot_list(present != CK_FALSE, OutArray::new(list, count));
    /// §5.5.2 C_GetSlotInfo.
    fn C_GetSlotInfo(id: CK_SLOT_ID, info: *mut CK_SLOT_INFO) unsafe => slot::get_slot_info(id, Out::new(info));
    /// §5.5.3 C_GetTokenInfo.
    fn C_GetTokenInfo(id: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) unsafe => slot::get_token_info(id, Out::new(info));
    /// §5.5.5 C_GetMechanismList.
    fn C_GetMechanismList(id: CK_SLOT_ID, list: *mut CK_MECHANISM_TYPE, count: *mut CK_ULONG) unsafe => slot::get_mechanism_list(id, OutArray::new(list, count));
    /// §5.5.6 C_GetMechanismInfo.
    fn C_GetMechanismInfo(id: CK_SLOT_ID, kind: CK_MECHANISM_TYPE, info: *mut CK_MECHANISM_INFO) unsafe => slot::get_mechanism_info(id, kind, Out::new(info));
    /// §5.5.7 C_InitToken.
    fn C_InitToken(id: CK_SLOT_ID, _pin: *mut CK_UTF8CHAR, _len: CK_ULONG, _label: *mut CK_UTF8CHAR) safe => slot::init_token(id);
    /// §5.5.8 C_InitPIN.
    fn C_InitPIN(h: CK_SESSION_HANDLE, pin: *mut CK_UTF8CHAR, len: CK_ULONG) unsafe => slot::init_pin(h, InBytes::new(pin, len));
    /// §5.5.9 C_SetPIN.
    fn C_SetPIN(h: CK_SESSION_HANDLE, old: *mut CK_UTF8CHAR, old_len: CK_ULONG, new: *mut CK_UTF8CHAR, new_len: CK_ULONG) unsafe => slot::set_pin(h, InBytes::new(old, old_len), InBytes::new(new, new_len));
    /// §5.5.4 C_WaitForSlotEvent.
    fn C_WaitForSlotEvent(flags: CK_FLAGS, id: *mut CK_SLOT_ID, reserved: *mut c_void) unsafe => slot::wait_for_slot_event(flags, Out::new(id), reserved.is_null());
    /// §5.6.1 C_OpenSession.
    fn C_OpenSession(id: CK_SLOT_ID, flags: CK_FLAGS, _app: *mut c_void, _notify: CK_NOTIFY, h: *mut CK_SESSION_HANDLE) unsafe => session::open_session(id, flags, Out::new(h));
    /// §5.6.2 C_CloseSession.
    fn C_CloseSession(h: CK_SESSION_HANDLE) safe => session::close_session(h);
    /// §5.6.3 C_CloseAllSessions.
    fn C_CloseAllSessions(id: CK_SLOT_ID) safe => session::close_all_sessions(id);
    /// §5.6.4 C_GetSessionInfo.
    fn C_GetSessionInfo(h: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) unsafe => session::get_session_info(h, Out::new(info));
    /// §5.6.5 C_SessionCancel.
    fn C_SessionCancel(h: CK_SESSION_HANDLE, flags: CK_FLAGS) safe => session::session_cancel(h, flags);
    /// §5.6.6 C_GetOperationState.
    fn C_GetOperationState(h: CK_SESSION_HANDLE, _state: *mut CK_BYTE, _len: *mut CK_ULONG) safe => session::operation_state(h);
    /// §5.6.7 C_SetOperationState.
    fn C_SetOperationState(h: CK_SESSION_HANDLE, _state: *mut CK_BYTE, _len: CK_ULONG, _enc: CK_OBJECT_HANDLE, _auth: CK_OBJECT_HANDLE) safe => session::operation_state(h);
    /// §5.6.8 C_Login.
    fn C_Login(h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: *mut CK_UTF8CHAR, len: CK_ULONG) unsafe => session::login(h, user, InBytes::new(pin, len));
    /// §5.6.9 C_LoginUser.
    fn C_LoginUser(h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: *mut CK_UTF8CHAR, len: CK_ULONG, name: *mut CK_UTF8CHAR, name_len: CK_ULONG) unsafe => session::login_user(h, user, InBytes::new(pin, len), InBytes::new(name, name_len));
    /// §5.6.10 C_Logout.
    fn C_Logout(h: CK_SESSION_HANDLE) safe => session::logout(h);
    /// §5.7.1 C_CreateObject.
    fn C_CreateObject(h: CK_SESSION_HANDLE, t: *mut CK_ATTRIBUTE, n: CK_ULONG, obj: *mut CK_OBJECT_HANDLE) unsafe => object::create_object(h, Template::new(t, n), Out::new(obj));
    /// §5.7.2 C_CopyObject.
    fn C_CopyObject(h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE, _t: *mut CK_ATTRIBUTE, _n: CK_ULONG, _new: *mut CK_OBJECT_HANDLE) safe => object::copy_object(h, obj);
    /// §5.7.3 C_DestroyObject.
    fn C_DestroyObject(h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE) safe => object::destroy_object(h, obj);
    /// §5.7.4 C_GetObjectSize.
    fn C_GetObjectSize(h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE, size: *mut CK_ULONG) unsafe => object::get_object_size(h, obj, Out::new(size));
    /// §5.7.5 C_GetAttributeValue.
    fn C_GetAttributeValue(h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE, t: *mut CK_ATTRIBUTE, n: CK_ULONG) unsafe => object::get_attribute_value(h, obj, Template::new(t, n));
    /// §5.7.6 C_SetAttributeValue.
    fn C_SetAttributeValue(h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE, t: *mut CK_ATTRIBUTE, n: CK_ULONG) unsafe => object::set_attribute_value(h, obj, Template::new(t, n));
    /// §5.7.7 C_FindObjectsInit.
    fn C_FindObjectsInit(h: CK_SESSION_HANDLE, t: *mut CK_ATTRIBUTE, n: CK_ULONG) unsafe => object::find_objects_init(h, Template::new(t, n));
    /// §5.7.8 C_FindObjects.
    fn C_FindObjects(h: CK_SESSION_HANDLE, objs: *mut CK_OBJECT_HANDLE, max: CK_ULONG, count: *mut CK_ULONG) unsafe => object::find_objects(h, OutHandles::new(objs, max, count));
    /// §5.7.9 C_FindObjectsFinal.
    fn C_FindObjectsFinal(h: CK_SESSION_HANDLE) safe => object::find_objects_final(h);
    /// §5.8.1 C_EncryptInit: public-key encryption is the host's job.
    fn C_EncryptInit(_h: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE) safe => unsupported();
    /// §5.8.2 C_Encrypt.
    fn C_Encrypt(_h: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _l: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.8.3 C_EncryptUpdate.
    fn C_EncryptUpdate(_h: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _l: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.8.4 C_EncryptFinal.
    fn C_EncryptFinal(_h: CK_SESSION_HANDLE, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.10.1 C_DecryptInit.
    fn C_DecryptInit(h: CK_SESSION_HANDLE, m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE) unsafe => crypto::decrypt_init(h, InMechanism::new(m), k);
    /// §5.10.2 C_Decrypt.
    fn C_Decrypt(h: CK_SESSION_HANDLE, d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG) unsafe => crypto::decrypt(h, InBytes::new(d, l), OutBytes::new(o, ol));
    /// §5.10.3 C_DecryptUpdate: RSA decryption is single-part.
    fn C_DecryptUpdate(_h: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _l: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.10.4 C_DecryptFinal.
    fn C_DecryptFinal(_h: CK_SESSION_HANDLE, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.12.1 C_DigestInit.
    fn C_DigestInit(h: CK_SESSION_HANDLE, m: *mut CK_MECHANISM) unsafe => digest::digest_init(h, InMechanism::new(m));
    /// §5.12.2 C_Digest.
    fn C_Digest(h: CK_SESSION_HANDLE, d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG) unsafe => digest::digest(h, InBytes::new(d, l), OutBytes::new(o, ol));
    /// §5.12.3 C_DigestUpdate.
    fn C_DigestUpdate(h: CK_SESSION_HANDLE, d: *mut CK_BYTE, l: CK_ULONG) unsafe => digest::digest_update(h, InBytes::new(d, l));
    /// §5.12.4 C_DigestKey.
    fn C_DigestKey(h: CK_SESSION_HANDLE, k: CK_OBJECT_HANDLE) safe => digest::digest_key(h, k);
    /// §5.12.5 C_DigestFinal.
    fn C_DigestFinal(h: CK_SESSION_HANDLE, o: *mut CK_BYTE, ol: *mut CK_ULONG) unsafe => digest::digest_final(h, OutBytes::new(o, ol));
    /// §5.13.1 C_SignInit.
    fn C_SignInit(h: CK_SESSION_HANDLE, m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE) unsafe => crypto::sign_init(h, InMechanism::new(m), k);
    /// §5.13.2 C_Sign.
    fn C_Sign(h: CK_SESSION_HANDLE, d: *mut CK_BYTE, l: CK_ULONG, o: *mut CK_BYTE, ol: *mut CK_ULONG) unsafe => crypto::sign(h, InBytes::new(d, l), OutBytes::new(o, ol));
    /// §5.13.3 C_SignUpdate.
    fn C_SignUpdate(h: CK_SESSION_HANDLE, d: *mut CK_BYTE, l: CK_ULONG) unsafe => crypto::sign_update(h, InBytes::new(d, l));
    /// §5.13.4 C_SignFinal.
    fn C_SignFinal(h: CK_SESSION_HANDLE, o: *mut CK_BYTE, ol: *mut CK_ULONG) unsafe => crypto::sign_final(h, OutBytes::new(o, ol));
    /// §5.13.5 C_SignRecoverInit.
    fn C_SignRecoverInit(_h: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE) safe => unsupported();
    /// §5.13.6 C_SignRecover.
    fn C_SignRecover(_h: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _l: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.15.1 C_VerifyInit.
    fn C_VerifyInit(h: CK_SESSION_HANDLE, m: *mut CK_MECHANISM, k: CK_OBJECT_HANDLE) unsafe => crypto::verify_init(h, InMechanism::new(m), k);
    /// §5.15.2 C_Verify.
    fn C_Verify(h: CK_SESSION_HANDLE, d: *mut CK_BYTE, l: CK_ULONG, s: *mut CK_BYTE, sl: CK_ULONG) unsafe => crypto::verify(h, InBytes::new(d, l), InBytes::new(s, sl));
    /// §5.15.3 C_VerifyUpdate.
    fn C_VerifyUpdate(h: CK_SESSION_HANDLE, d: *mut CK_BYTE, l: CK_ULONG) unsafe => crypto::verify_update(h, InBytes::new(d, l));
    /// §5.15.4 C_VerifyFinal.
    fn C_VerifyFinal(h: CK_SESSION_HANDLE, s: *mut CK_BYTE, sl: CK_ULONG) unsafe => crypto::verify_final(h, InBytes::new(s, sl));
    /// §5.15.5 C_VerifyRecoverInit.
    fn C_VerifyRecoverInit(_h: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE) safe => unsupported();
    /// §5.15.6 C_VerifyRecover.
    fn C_VerifyRecover(_h: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _l: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.17.1 C_DigestEncryptUpdate.
    fn C_DigestEncryptUpdate(_h: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _l: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.17.2 C_DecryptDigestUpdate.
    fn C_DecryptDigestUpdate(_h: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _l: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.17.3 C_SignEncryptUpdate.
    fn C_SignEncryptUpdate(_h: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _l: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.17.4 C_DecryptVerifyUpdate.
    fn C_DecryptVerifyUpdate(_h: CK_SESSION_HANDLE, _d: *mut CK_BYTE, _l: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.18.1 C_GenerateKey: no secret keys live on a PIV card.
    fn C_GenerateKey(_h: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _t: *mut CK_ATTRIBUTE, _n: CK_ULONG, _k: *mut CK_OBJECT_HANDLE) safe => unsupported();
    /// §5.18.2 C_GenerateKeyPair.
    fn C_GenerateKeyPair(h: CK_SESSION_HANDLE, m: *mut CK_MECHANISM, pt: *mut CK_ATTRIBUTE, pn: CK_ULONG, st: *mut CK_ATTRIBUTE, sn: CK_ULONG, pk: *mut CK_OBJECT_HANDLE, sk: *mut CK_OBJECT_HANDLE) unsafe => keys::generate_key_pair(h, InMechanism::new(m), Template::new(pt, pn), Template::new(st, sn), Out::new(pk), Out::new(sk));
    /// §5.18.3 C_WrapKey.
    fn C_WrapKey(_h: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _w: CK_OBJECT_HANDLE, _k: CK_OBJECT_HANDLE, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.18.4 C_UnwrapKey.
    fn C_UnwrapKey(_h: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _u: CK_OBJECT_HANDLE, _w: *mut CK_BYTE, _wl: CK_ULONG, _t: *mut CK_ATTRIBUTE, _n: CK_ULONG, _k: *mut CK_OBJECT_HANDLE) safe => unsupported();
    /// §5.18.5 C_DeriveKey.
    fn C_DeriveKey(h: CK_SESSION_HANDLE, m: *mut CK_MECHANISM, base: CK_OBJECT_HANDLE, t: *mut CK_ATTRIBUTE, n: CK_ULONG, k: *mut CK_OBJECT_HANDLE) unsafe => keys::derive_key(h, InMechanism::new(m), base, Template::new(t, n), Out::new(k));
    /// §5.19.1 C_SeedRandom.
    fn C_SeedRandom(h: CK_SESSION_HANDLE, s: *mut CK_BYTE, l: CK_ULONG) unsafe => keys::seed_random(h, InBytes::new(s, l));
    /// §5.19.2 C_GenerateRandom.
    fn C_GenerateRandom(h: CK_SESSION_HANDLE, o: *mut CK_BYTE, l: CK_ULONG) unsafe => keys::generate_random(h, OutSlice::new(o, l));
    /// §5.20.1 C_GetFunctionStatus (legacy).
    fn C_GetFunctionStatus(h: CK_SESSION_HANDLE) safe => not_parallel(h);
    /// §5.20.2 C_CancelFunction (legacy).
    fn C_CancelFunction(h: CK_SESSION_HANDLE) safe => not_parallel(h);
    /// §5.9.1 C_MessageEncryptInit. The message-based functions (§5.9,
    /// §5.11, §5.14, §5.16): a PIV card has no AEAD or message-signing
    /// mechanisms.
    fn C_MessageEncryptInit(_h: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE) safe => unsupported();
    /// §5.9.2 C_EncryptMessage.
    fn C_EncryptMessage(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _a: *mut CK_BYTE, _al: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.9.3 C_EncryptMessageBegin.
    fn C_EncryptMessageBegin(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _a: *mut CK_BYTE, _al: CK_ULONG) safe => unsupported();
    /// §5.9.4 C_EncryptMessageNext.
    fn C_EncryptMessageNext(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG, _f: CK_FLAGS) safe => unsupported();
    /// §5.9.5 C_MessageEncryptFinal.
    fn C_MessageEncryptFinal(_h: CK_SESSION_HANDLE) safe => unsupported();
    /// §5.11.1 C_MessageDecryptInit.
    fn C_MessageDecryptInit(_h: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE) safe => unsupported();
    /// §5.11.2 C_DecryptMessage.
    fn C_DecryptMessage(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _a: *mut CK_BYTE, _al: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.11.3 C_DecryptMessageBegin.
    fn C_DecryptMessageBegin(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _a: *mut CK_BYTE, _al: CK_ULONG) safe => unsupported();
    /// §5.11.4 C_DecryptMessageNext.
    fn C_DecryptMessageNext(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG, _f: CK_FLAGS) safe => unsupported();
    /// §5.11.5 C_MessageDecryptFinal.
    fn C_MessageDecryptFinal(_h: CK_SESSION_HANDLE) safe => unsupported();
    /// §5.14.1 C_MessageSignInit.
    fn C_MessageSignInit(_h: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE) safe => unsupported();
    /// §5.14.2 C_SignMessage.
    fn C_SignMessage(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.14.3 C_SignMessageBegin.
    fn C_SignMessageBegin(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG) safe => unsupported();
    /// §5.14.4 C_SignMessageNext.
    fn C_SignMessageNext(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _o: *mut CK_BYTE, _ol: *mut CK_ULONG) safe => unsupported();
    /// §5.14.5 C_MessageSignFinal.
    fn C_MessageSignFinal(_h: CK_SESSION_HANDLE) safe => unsupported();
    /// §5.16.1 C_MessageVerifyInit.
    fn C_MessageVerifyInit(_h: CK_SESSION_HANDLE, _m: *mut CK_MECHANISM, _k: CK_OBJECT_HANDLE) safe => unsupported();
    /// §5.16.2 C_VerifyMessage.
    fn C_VerifyMessage(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _s: *mut CK_BYTE, _sl: CK_ULONG) safe => unsupported();
    /// §5.16.3 C_VerifyMessageBegin.
    fn C_VerifyMessageBegin(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG) safe => unsupported();
    /// §5.16.4 C_VerifyMessageNext.
    fn C_VerifyMessageNext(_h: CK_SESSION_HANDLE, _p: *mut c_void, _pl: CK_ULONG, _d: *mut CK_BYTE, _dl: CK_ULONG, _s: *mut CK_BYTE, _sl: CK_ULONG) safe => unsupported();
    /// §5.16.5 C_MessageVerifyFinal.
    fn C_MessageVerifyFinal(_h: CK_SESSION_HANDLE) safe => unsupported();
}

/// Call `$then!` with the 2.40 entry points (in table order) and `$extra`.
macro_rules! with_2_40_entries {
    ($then:ident $(, $extra:ident)*) => {
        $then!(
            C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo,
            C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN, C_OpenSession,
            C_CloseSession, C_CloseAllSessions, C_GetSessionInfo, C_GetOperationState, C_SetOperationState,
            C_Login, C_Logout, C_CreateObject, C_CopyObject, C_DestroyObject, C_GetObjectSize,
            C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal,
            C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal, C_DecryptInit, C_Decrypt,
            C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey, C_DigestFinal,
            C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_SignRecoverInit, C_SignRecover, C_VerifyInit,
            C_Verify, C_VerifyUpdate, C_VerifyFinal, C_VerifyRecoverInit, C_VerifyRecover,
            C_DigestEncryptUpdate, C_DecryptDigestUpdate, C_SignEncryptUpdate, C_DecryptVerifyUpdate,
            C_GenerateKey, C_GenerateKeyPair, C_WrapKey, C_UnwrapKey, C_DeriveKey, C_SeedRandom,
            C_GenerateRandom, C_GetFunctionStatus, C_CancelFunction, C_WaitForSlotEvent $(, $extra)*
        );
    };
}

macro_rules! table_2_40 {
    ($($f:ident),*) => {
        /// The 2.40 table (C_GetFunctionList).
        pub const fn function_list() -> CK_FUNCTION_LIST {
            CK_FUNCTION_LIST { version: CK_VERSION { major: 2, minor: 40 }, $($f: Some($f)),* }
        }
    };
}

macro_rules! table_3_0 {
    ($($f:ident),*) => {
        /// The 3.0 table (C_GetInterface): the 2.40 entries, then the 3.0 ones.
        pub const fn function_list_3_0() -> CK_FUNCTION_LIST_3_0 {
            CK_FUNCTION_LIST_3_0 { version: CK_VERSION { major: 3, minor: 0 }, $($f: Some($f)),* }
        }
    };
}

with_2_40_entries!(table_2_40);
with_2_40_entries!(
    table_3_0,
    C_GetInterfaceList,
    C_GetInterface,
    C_LoginUser,
    C_SessionCancel,
    C_MessageEncryptInit,
    C_EncryptMessage,
    C_EncryptMessageBegin,
    C_EncryptMessageNext,
    C_MessageEncryptFinal,
    C_MessageDecryptInit,
    C_DecryptMessage,
    C_DecryptMessageBegin,
    C_DecryptMessageNext,
    C_MessageDecryptFinal,
    C_MessageSignInit,
    C_SignMessage,
    C_SignMessageBegin,
    C_SignMessageNext,
    C_MessageSignFinal,
    C_MessageVerifyInit,
    C_VerifyMessage,
    C_VerifyMessageBegin,
    C_VerifyMessageNext,
    C_MessageVerifyFinal
);

#[cfg(test)]
mod tests {
    /// PKCS#11 v3.0 (base specification, OASIS Standard 2020) chapter 5:
    /// each function family's section and its functions in the spec's order,
    /// so `C_SignInit` is §5.13.1.
    const V3_0: &[(&str, &[&str])] = &[
        (
            "5.4",
            &[
                "C_Initialize",
                "C_Finalize",
                "C_GetInfo",
                "C_GetFunctionList",
                "C_GetInterfaceList",
                "C_GetInterface",
            ],
        ),
        (
            "5.5",
            &[
                "C_GetSlotList",
                "C_GetSlotInfo",
                "C_GetTokenInfo",
                "C_WaitForSlotEvent",
                "C_GetMechanismList",
                "C_GetMechanismInfo",
                "C_InitToken",
                "C_InitPIN",
                "C_SetPIN",
            ],
        ),
        (
            "5.6",
            &[
                "C_OpenSession",
                "C_CloseSession",
                "C_CloseAllSessions",
                "C_GetSessionInfo",
                "C_SessionCancel",
                "C_GetOperationState",
                "C_SetOperationState",
                "C_Login",
                "C_LoginUser",
                "C_Logout",
            ],
        ),
        (
            "5.7",
            &[
                "C_CreateObject",
                "C_CopyObject",
                "C_DestroyObject",
                "C_GetObjectSize",
                "C_GetAttributeValue",
                "C_SetAttributeValue",
                "C_FindObjectsInit",
                "C_FindObjects",
                "C_FindObjectsFinal",
            ],
        ),
        (
            "5.8",
            &[
                "C_EncryptInit",
                "C_Encrypt",
                "C_EncryptUpdate",
                "C_EncryptFinal",
            ],
        ),
        (
            "5.9",
            &[
                "C_MessageEncryptInit",
                "C_EncryptMessage",
                "C_EncryptMessageBegin",
                "C_EncryptMessageNext",
                "C_MessageEncryptFinal",
            ],
        ),
        (
            "5.10",
            &[
                "C_DecryptInit",
                "C_Decrypt",
                "C_DecryptUpdate",
                "C_DecryptFinal",
            ],
        ),
        (
            "5.11",
            &[
                "C_MessageDecryptInit",
                "C_DecryptMessage",
                "C_DecryptMessageBegin",
                "C_DecryptMessageNext",
                "C_MessageDecryptFinal",
            ],
        ),
        (
            "5.12",
            &[
                "C_DigestInit",
                "C_Digest",
                "C_DigestUpdate",
                "C_DigestKey",
                "C_DigestFinal",
            ],
        ),
        (
            "5.13",
            &[
                "C_SignInit",
                "C_Sign",
                "C_SignUpdate",
                "C_SignFinal",
                "C_SignRecoverInit",
                "C_SignRecover",
            ],
        ),
        (
            "5.14",
            &[
                "C_MessageSignInit",
                "C_SignMessage",
                "C_SignMessageBegin",
                "C_SignMessageNext",
                "C_MessageSignFinal",
            ],
        ),
        (
            "5.15",
            &[
                "C_VerifyInit",
                "C_Verify",
                "C_VerifyUpdate",
                "C_VerifyFinal",
                "C_VerifyRecoverInit",
                "C_VerifyRecover",
            ],
        ),
        (
            "5.16",
            &[
                "C_MessageVerifyInit",
                "C_VerifyMessage",
                "C_VerifyMessageBegin",
                "C_VerifyMessageNext",
                "C_MessageVerifyFinal",
            ],
        ),
        (
            "5.17",
            &[
                "C_DigestEncryptUpdate",
                "C_DecryptDigestUpdate",
                "C_SignEncryptUpdate",
                "C_DecryptVerifyUpdate",
            ],
        ),
        (
            "5.18",
            &[
                "C_GenerateKey",
                "C_GenerateKeyPair",
                "C_WrapKey",
                "C_UnwrapKey",
                "C_DeriveKey",
            ],
        ),
        ("5.19", &["C_SeedRandom", "C_GenerateRandom"]),
        ("5.20", &["C_GetFunctionStatus", "C_CancelFunction"]),
    ];

    fn section(name: &str) -> Option<String> {
        V3_0.iter().find_map(|(chapter, fns)| {
            fns.iter()
                .position(|f| *f == name)
                .map(|i| format!("{chapter}.{}", i + 1))
        })
    }

    /// Every `§N.N.N C_Name` reference in `text`, with its line.
    fn references(text: &str) -> Vec<(usize, String, String)> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(i) = rest.find('§') {
                rest = &rest[i + '§'.len_utf8()..];
                let number: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                let after = rest[number.len()..].trim_start_matches(':').trim_start();
                if after.starts_with("C_") {
                    let name: String = after
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    out.push((n + 1, number.trim_end_matches('.').to_string(), name));
                }
            }
        }
        out
    }

    /// The spec-section doc lines (issue 14: 24 functions disagreed between
    /// the shims and the safe functions): one numbering, v3.0's, right for
    /// every reference in the entry points, the function families and the
    /// exported symbols, and every entry point has one.
    #[test]
    fn every_spec_section_reference_is_v3_0s() {
        let sources = [
            ("ffi/entry.rs", include_str!("entry.rs")),
            ("ffi/mod.rs", include_str!("mod.rs")),
            ("lib.rs", include_str!("../lib.rs")),
            ("fns/crypto.rs", include_str!("../fns/crypto.rs")),
            ("fns/digest.rs", include_str!("../fns/digest.rs")),
            ("fns/general.rs", include_str!("../fns/general.rs")),
            ("fns/keys.rs", include_str!("../fns/keys.rs")),
            ("fns/object.rs", include_str!("../fns/object.rs")),
            ("fns/session.rs", include_str!("../fns/session.rs")),
            ("fns/slot.rs", include_str!("../fns/slot.rs")),
        ];
        let mut wrong = Vec::new();
        let mut checked = 0;
        for (file, text) in sources {
            for (line, number, name) in references(text) {
                match section(&name) {
                    Some(want) if want == number => checked += 1,
                    Some(want) => {
                        wrong.push(format!("{file}:{line}: {name} is §{want}, not §{number}"))
                    }
                    None => wrong.push(format!("{file}:{line}: {name} is no v3.0 function")),
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // Each entry point's shim names its section right above it.
        let entry = include_str!("entry.rs");
        for (_, fns) in V3_0 {
            for f in *fns {
                let shim = format!("    fn {f}(");
                let at = entry
                    .find(&shim)
                    .unwrap_or_else(|| panic!("no shim for {f}"));
                let doc = entry[..at]
                    .lines()
                    .rev()
                    .take_while(|l| l.trim_start().starts_with("///"));
                assert!(
                    doc.into_iter()
                        .any(|l| l.contains(&format!("§{} {f}", section(f).unwrap()))),
                    "the shim of {f} names its section"
                );
            }
        }
        assert!(
            checked > 92,
            "{checked} references checked, the shims alone have 92"
        );
    }
}
