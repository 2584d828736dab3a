//! One module per fuzz target; each `run` panics when an invariant breaks.

pub mod atr;
pub mod command_apdu;
pub mod hostile_card;
pub mod p11_template;
pub mod piv_objects;
pub mod response;
pub mod sim_dispatcher;
pub mod tlv;
pub mod x509_fields;
