//! A local emulator of the Dataverse Web API and the Entra ID token endpoint.
