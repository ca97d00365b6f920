//! The model kinds, by name (`mixture`, `gpl`, `mfa`): what settings, model files and the API call
//! them.
//!
//! Must not import: anything (every layer above names the kinds).

/// The model kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// One user type per user, drawn from a K-type Gaussian mixture.
    #[default]
    Mixture,
    /// Gaussian pLSA: user-specific type weights, a Gaussian per item and type.
    Gpl,
    /// A mixture of low-rank types: each type a mean profile plus r directions of variation.
    Mfa,
}

impl std::str::FromStr for ModelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mixture" => Ok(Self::Mixture),
            "gpl" => Ok(Self::Gpl),
            "mfa" => Ok(Self::Mfa),
            _ => Err(format!("unknown model kind {s:?} (mixture, gpl or mfa)")),
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Mixture => "mixture",
            Self::Gpl => "gpl",
            Self::Mfa => "mfa",
        })
    }
}
