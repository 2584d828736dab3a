//! Typed errors that carry their CK_RV, mapped in one exhaustive match.

use cryptoki_sys::*;

/// Everything a PKCS#11 call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("bad arguments")]
    ArgumentsBad,
    #[error("buffer too small")]
    BufferTooSmall,
    #[error("not initialized")]
    NotInitialized,
    #[error("already initialized")]
    AlreadyInitialized,
    #[error("cannot use the application's locking")]
    CantLock,
    #[error("invalid slot")]
    SlotIdInvalid,
    #[error("no token in the slot")]
    TokenNotPresent,
    #[error("token not recognized")]
    TokenNotRecognized,
    #[error("the token was removed")]
    DeviceRemoved,
    #[error("device error: {0}")]
    DeviceError(String),
    #[error("the token is out of memory")]
    DeviceMemory,
    #[error("invalid session handle")]
    SessionHandleInvalid,
    #[error("session is read-only")]
    SessionReadOnly,
    #[error("a read-only session exists")]
    SessionReadOnlyExists,
    #[error("the SO is logged in in a read-write session")]
    SessionReadWriteSoExists,
    #[error("serial sessions are not supported")]
    SessionParallelNotSupported,
    #[error("incorrect PIN")]
    PinIncorrect,
    #[error("PIN blocked")]
    PinLocked,
    #[error("PIN length out of range")]
    PinLenRange,
    #[error("PIN has invalid characters")]
    PinInvalid,
    #[error("user not logged in")]
    UserNotLoggedIn,
    #[error("user already logged in")]
    UserAlreadyLoggedIn,
    #[error("another user is already logged in")]
    UserAnotherAlreadyLoggedIn,
    #[error("invalid user type")]
    UserTypeInvalid,
    #[error("an operation is active")]
    OperationActive,
    #[error("no operation initialized")]
    OperationNotInitialized,
    #[error("invalid object handle")]
    ObjectHandleInvalid,
    #[error("invalid key handle")]
    KeyHandleInvalid,
    #[error("key type inconsistent with mechanism")]
    KeyTypeInconsistent,
    #[error("key function not permitted")]
    KeyFunctionNotPermitted,
    #[error("the key cannot be digested")]
    KeyIndigestible,
    #[error("key size out of range")]
    KeySizeRange,
    #[error("invalid mechanism")]
    MechanismInvalid,
    #[error("invalid mechanism parameter")]
    MechanismParamInvalid,
    #[error("invalid attribute type")]
    AttributeTypeInvalid,
    #[error("invalid attribute value")]
    AttributeValueInvalid,
    #[error("attribute is read-only")]
    AttributeReadOnly,
    #[error("attribute is sensitive")]
    AttributeSensitive,
    #[error("template incomplete")]
    TemplateIncomplete,
    #[error("template inconsistent")]
    TemplateInconsistent,
    #[error("curve not supported")]
    CurveNotSupported,
    #[error("data length out of range")]
    DataLenRange,
    #[error("invalid data")]
    DataInvalid,
    #[error("invalid encrypted data")]
    EncryptedDataInvalid,
    #[error("encrypted data length out of range")]
    EncryptedDataLenRange,
    #[error("invalid signature")]
    SignatureInvalid,
    #[error("signature length out of range")]
    SignatureLenRange,
    #[error("function not supported")]
    FunctionNotSupported,
    #[error("function failed: {0}")]
    FunctionFailed(String),
    #[error("action prohibited: {0}")]
    ActionProhibited(&'static str),
    #[error("token is write protected")]
    TokenWriteProtected,
    /// A user login cannot write: the management key is not PIN-protected
    /// (`ukey mgmt-key protect` fixes it). CKR_TOKEN_WRITE_PROTECTED: for
    /// this user the token is read-only, which no login of theirs changes.
    #[error(
        "the management key is not PIN-protected: run `ukey mgmt-key protect`, or log in as SO"
    )]
    ManagementKeyNotProtected,
    #[error("no random number generator on the token")]
    RandomNoRng,
    #[error("seeding is not supported")]
    RandomSeedNotSupported,
    #[error("no slot event")]
    NoEvent,
    #[error("functions do not run in parallel")]
    FunctionNotParallel,
    #[error("general error: {0}")]
    General(String),
    /// Internal: the card was reset under us (recovered by `Token::transact`).
    #[error("the card was reset")]
    CardReset,
    /// Internal: the applet did not know the instruction; SELECT it again.
    #[error("the PIV applet is not selected")]
    Reselect,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The CK_RV this error is reported as.
    pub fn rv(&self) -> CK_RV {
        match self {
            Error::ArgumentsBad => CKR_ARGUMENTS_BAD,
            Error::BufferTooSmall => CKR_BUFFER_TOO_SMALL,
            Error::NotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
            Error::AlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
            Error::CantLock => CKR_CANT_LOCK,
            Error::SlotIdInvalid => CKR_SLOT_ID_INVALID,
            Error::TokenNotPresent => CKR_TOKEN_NOT_PRESENT,
            Error::TokenNotRecognized => CKR_TOKEN_NOT_RECOGNIZED,
            Error::DeviceRemoved => CKR_DEVICE_REMOVED,
            Error::DeviceError(_) => CKR_DEVICE_ERROR,
            Error::DeviceMemory => CKR_DEVICE_MEMORY,
            Error::SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
            Error::SessionReadOnly => CKR_SESSION_READ_ONLY,
            Error::SessionReadOnlyExists => CKR_SESSION_READ_ONLY_EXISTS,
            Error::SessionReadWriteSoExists => CKR_SESSION_READ_WRITE_SO_EXISTS,
            Error::SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            Error::PinIncorrect => CKR_PIN_INCORRECT,
            Error::PinLocked => CKR_PIN_LOCKED,
            Error::PinLenRange => CKR_PIN_LEN_RANGE,
            Error::PinInvalid => CKR_PIN_INVALID,
            Error::UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
            Error::UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
            Error::UserAnotherAlreadyLoggedIn => CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            Error::UserTypeInvalid => CKR_USER_TYPE_INVALID,
            Error::OperationActive => CKR_OPERATION_ACTIVE,
            Error::OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
            Error::ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
            Error::KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
            Error::KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
            Error::KeyFunctionNotPermitted => CKR_KEY_FUNCTION_NOT_PERMITTED,
            Error::KeyIndigestible => CKR_KEY_INDIGESTIBLE,
            Error::KeySizeRange => CKR_KEY_SIZE_RANGE,
            Error::MechanismInvalid => CKR_MECHANISM_INVALID,
            Error::MechanismParamInvalid => CKR_MECHANISM_PARAM_INVALID,
            Error::AttributeTypeInvalid => CKR_ATTRIBUTE_TYPE_INVALID,
            Error::AttributeValueInvalid => CKR_ATTRIBUTE_VALUE_INVALID,
            Error::AttributeReadOnly => CKR_ATTRIBUTE_READ_ONLY,
            Error::AttributeSensitive => CKR_ATTRIBUTE_SENSITIVE,
            Error::TemplateIncomplete => CKR_TEMPLATE_INCOMPLETE,
            Error::TemplateInconsistent => CKR_TEMPLATE_INCONSISTENT,
            Error::CurveNotSupported => CKR_CURVE_NOT_SUPPORTED,
            Error::DataLenRange => CKR_DATA_LEN_RANGE,
            Error::DataInvalid => CKR_DATA_INVALID,
            Error::EncryptedDataInvalid => CKR_ENCRYPTED_DATA_INVALID,
            Error::EncryptedDataLenRange => CKR_ENCRYPTED_DATA_LEN_RANGE,
            Error::SignatureInvalid => CKR_SIGNATURE_INVALID,
            Error::SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
            Error::FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
            Error::FunctionFailed(_) => CKR_FUNCTION_FAILED,
            Error::ActionProhibited(_) => CKR_ACTION_PROHIBITED,
            Error::TokenWriteProtected | Error::ManagementKeyNotProtected => {
                CKR_TOKEN_WRITE_PROTECTED
            }
            Error::RandomNoRng => CKR_RANDOM_NO_RNG,
            Error::RandomSeedNotSupported => CKR_RANDOM_SEED_NOT_SUPPORTED,
            Error::NoEvent => CKR_NO_EVENT,
            Error::FunctionNotParallel => CKR_FUNCTION_NOT_PARALLEL,
            Error::General(_) => CKR_GENERAL_ERROR,
            Error::CardReset => CKR_DEVICE_REMOVED,
            Error::Reselect => CKR_DEVICE_ERROR,
        }
    }
}

/// What a card error means for a PKCS#11 caller. Reset is handled (retried)
/// before it gets here; what is left is reported as it is.
impl From<apdu::Error> for Error {
    fn from(e: apdu::Error) -> Self {
        use apdu::transport::TransportError as T;
        use apdu::StatusWord as S;
        match e {
            apdu::Error::Transport(T::CardRemoved | T::ReaderUnavailable | T::NoCard) => {
                Error::DeviceRemoved
            }
            apdu::Error::Transport(T::CardReset) => Error::CardReset,
            apdu::Error::Transport(t) => Error::DeviceError(t.to_string()),
            apdu::Error::Status(S::VerifyFailed { .. }) => Error::PinIncorrect,
            apdu::Error::Status(S::Blocked) => Error::PinLocked,
            apdu::Error::Status(S::SecurityStatusNotSatisfied) => Error::UserNotLoggedIn,
            apdu::Error::Status(S::NotEnoughMemory) => Error::DeviceMemory,
            apdu::Error::Status(S::InsNotSupported) => Error::Reselect,
            apdu::Error::Status(sw) => Error::DeviceError(format!("card answered {sw}")),
            apdu::Error::Malformed(what) => {
                Error::DeviceError(format!("malformed {what} from the card"))
            }
            apdu::Error::InvalidArgument(what) => Error::General(what.to_string()),
        }
    }
}
