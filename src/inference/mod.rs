//! After the shards: the same preparation for new images (`apply`), and predictions taken back to
//! the original pixels (`restore`). Both read a finished build through `replay`, so inference can
//! never drift from training.
pub mod apply;
pub mod predictions;
pub mod replay;
pub mod restore;
pub mod sidecar;
