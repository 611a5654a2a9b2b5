//! `.edgerc` files: INI sections of EdgeGrid credentials, with environment overrides.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgercError {
    #[error("placeholder")]
    Placeholder,
}
