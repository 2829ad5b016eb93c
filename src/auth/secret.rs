//! Secret strings (client secrets, passwords, assertions, access tokens) that never print themselves.

use std::fmt;

/// A secret string: a client secret, a certificate password or a signed client assertion.
///
/// `Debug` prints `Secret([redacted])`; there is no `Display`. Read the value with [`Secret::expose`]
/// only where it goes on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself. Call this only to put the value on the wire or to decrypt a key.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// A bearer access token for the Dataverse Web API.
///
/// `Debug` prints `AccessToken([redacted])`; there is no `Display`. Two tokens compare equal when
/// their values are equal, which is how [`crate::auth::TokenProvider::invalidate`] recognises the
/// token a request was refused with.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Secret);

impl AccessToken {
    /// Wraps a token value.
    pub fn new(value: impl Into<String>) -> Self {
        AccessToken(Secret::new(value))
    }

    /// The token itself, for the `Authorization: Bearer` header and nothing else.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{s:#?}"), "Secret([redacted])");
        assert_eq!(s.expose(), "hunter2");
        let t = AccessToken::new("eyJ.token");
        assert_eq!(format!("{t:?}"), "AccessToken([redacted])");
        assert_eq!(t.expose(), "eyJ.token");
        assert_eq!(t, AccessToken::new("eyJ.token"));
        assert_ne!(t, AccessToken::new("other"));
    }
}
