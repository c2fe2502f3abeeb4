//! TLS to PostgreSQL, with libpq's `sslmode` and `sslrootcert` in `[store] url`.
//!
//! tokio-postgres knows `sslmode=disable|prefer|require` but rejects `verify-ca`,
//! `verify-full` and `sslrootcert`, so both are read (and removed) here before the rest of
//! the URL goes to its parser. The certificate policy:
//!
//! - `disable`: no TLS.
//! - `prefer` (libpq's default, and the default here): TLS when the server offers it, in
//!   clear when it does not. The certificate is not checked (this only stops listening),
//!   unless `sslrootcert` is given: then it must chain to that CA.
//! - `require`: TLS or no connection; checked as `prefer` is (libpq too checks the chain
//!   when a root certificate is given).
//! - `verify-ca`: the certificate must chain to `sslrootcert` (or to the system's roots
//!   without it, or with `sslrootcert=system`); the host name is not checked.
//! - `verify-full`: as `verify-ca`, and the certificate must name the host connected to.
//!
//! No SCRAM channel binding is offered (the server's certificate signature hash would
//! have to be parsed out of the certificate): the certificate check is what stops a man in
//! the middle.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use super::super::tokens::StoreError;
use crate::error_class::ErrorClass;

/// `sslmode` as libpq spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(value: &str) -> Result<Mode, StoreError> {
        Ok(match value {
            "disable" => Mode::Disable,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                return Err(bad(format!(
                    "sslmode={other} is not one of disable, prefer, require, verify-ca, \
                     verify-full"
                )));
            }
        })
    }

    fn tokio(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// The certificates a server's must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Root {
    File(PathBuf),
    System,
}

/// A URL that cannot work as written: a config error (exit 2), not a database outage.
fn bad(message: String) -> StoreError {
    StoreError::Refused {
        class: ErrorClass::Config,
        message: format!("[store] url: {message}"),
    }
}

/// The connection settings and the TLS connector for `url`. Errors name the field and
/// never quote the URL (it may hold a password).
pub(super) fn config(url: &str) -> Result<(tokio_postgres::Config, MakeRustls), StoreError> {
    let (rest, mode, root) = split(url)?;
    let mut config: tokio_postgres::Config = rest.parse().map_err(|e| {
        bad(format!(
            "not a PostgreSQL URL or key=value connection string ({e})"
        ))
    })?;
    let mode = mode.unwrap_or(Mode::Prefer);
    let root = match root {
        Some(r) if r == "system" => Some(Root::System),
        Some(r) => Some(Root::File(PathBuf::from(r))),
        None if matches!(mode, Mode::VerifyCa | Mode::VerifyFull) => Some(Root::System),
        None => None,
    };
    config.ssl_mode(mode.tokio());
    let verifier = Verifier::new(mode, root.as_ref())?;
    let tls = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok((config, MakeRustls(Arc::new(tls))))
}

/// Takes `sslmode` and `sslrootcert` out of a URL (`postgres://…?sslmode=…`) or a
/// key=value string (`host=… sslmode=…`): the rest, and the two values.
fn split(url: &str) -> Result<(String, Option<Mode>, Option<String>), StoreError> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: String| -> Result<(), StoreError> {
        if key == "sslmode" {
            mode = Some(Mode::parse(&value)?);
        } else if value.is_empty() {
            return Err(bad("sslrootcert= needs a file (or `system`)".into()));
        } else {
            root = Some(value);
        }
        Ok(())
    };
    let ours = |key: &str| key == "sslmode" || key == "sslrootcert";
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&') {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    if ours(key) {
                        take(key, percent_decode(value, key)?)?;
                    } else {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            if !ours(key) {
                kept.push(word);
                continue;
            }
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(value);
            take(key, value.to_owned())?;
        }
        kept.join(" ")
    };
    if mode == Some(Mode::Disable) && root.is_some() {
        return Err(bad(
            "sslrootcert= is given but sslmode=disable turns TLS off".into(),
        ));
    }
    Ok((rest, mode, root))
}

fn percent_decode(value: &str, key: &str) -> Result<String, StoreError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let b = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(format!("{key}= has a bad %-escape")))?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(format!("{key}= is not UTF-8 once %-decoded")))
}

/// Checks a server's certificate as the mode says.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    /// None: not checked.
    chain: Option<Arc<WebPkiServerVerifier>>,
    host_name: bool,
    /// What the chain must lead to, for errors.
    root: String,
}

impl Verifier {
    fn new(mode: Mode, root: Option<&Root>) -> Result<Verifier, StoreError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (chain, described) = match (mode, root) {
            (Mode::Disable, _) | (_, None) => (None, String::new()),
            (_, Some(Root::File(path))) => (
                Some(roots(read_roots(path)?, &provider, mode)?),
                format!("the CA in sslrootcert={}", path.display()),
            ),
            (_, Some(Root::System)) => (
                Some(roots(system_roots(mode)?, &provider, mode)?),
                "any of the system's root certificates".to_owned(),
            ),
        };
        Ok(Verifier {
            provider,
            chain,
            host_name: mode == Mode::VerifyFull,
            root: described,
        })
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Disable => "disable",
        Mode::Prefer => "prefer",
        Mode::Require => "require",
        Mode::VerifyCa => "verify-ca",
        Mode::VerifyFull => "verify-full",
    }
}

fn read_roots(path: &Path) -> Result<RootCertStore, StoreError> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| bad(format!("sslrootcert={shown}: {e}")))?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("sslrootcert={shown}: not PEM ({e})")))?;
        store
            .add(cert)
            .map_err(|e| bad(format!("sslrootcert={shown}: {e}")))?;
    }
    if store.is_empty() {
        return Err(bad(format!("sslrootcert={shown} holds no PEM certificate")));
    }
    Ok(store)
}

fn system_roots(mode: Mode) -> Result<RootCertStore, StoreError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(found.certs);
    if store.is_empty() {
        return Err(bad(format!(
            "sslmode={} needs sslrootcert=FILE: no sslrootcert is given and no system root \
             certificate was found",
            mode_name(mode)
        )));
    }
    Ok(store)
}

fn roots(
    store: RootCertStore,
    provider: &Arc<CryptoProvider>,
    mode: Mode,
) -> Result<Arc<WebPkiServerVerifier>, StoreError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
        .map_err(|e| bad(format!("sslmode={}: {e}", mode_name(mode))))
}

fn refused(message: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        io::Error::other(message),
    ))))
}

/// The reason [`Verifier`] gave for refusing a certificate, out of the I/O error that
/// carries it (whose text would show it as a debug dump).
pub(super) fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let inner = e.downcast_ref::<io::Error>()?.get_ref()?;
    match inner.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            Some(format!("invalid peer certificate: {}", other.0))
        }
        _ => None,
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // The name is checked last, after the chain: a name error means the chain is good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.host_name => Ok(ServerCertVerified::assertion()),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Err(refused(format!(
                "the server's certificate is not for host `{}` (sslmode=verify-full checks \
                 the host name)",
                server_name.to_str()
            ))),
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                Err(refused(format!(
                    "the server's certificate is not signed by {}",
                    self.root
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// tokio-postgres's connector over rustls (a dozen lines instead of a crate that would
/// bring x509 parsing for channel binding).
#[derive(Clone, Debug)]
pub(super) struct MakeRustls(Arc<rustls::ClientConfig>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Connect, Self::Error> {
        Ok(Connect {
            config: self.0.clone(),
            name: ServerName::try_from(domain.to_owned())?,
        })
    }
}

pub(super) struct Connect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let tls = connector.connect(self.name, stream).await?;
            Ok(Stream(Box::new(tls)))
        })
    }
}

pub(super) struct Stream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_fields_are_taken_out_of_a_url_and_the_rest_kept() {
        let (rest, mode, root) = split(
            "postgres://u:p%40ss@db.example:5432/app?sslmode=verify-full&\
             sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p%40ss@db.example:5432/app?application_name=x"
        );
        assert_eq!(mode, Some(Mode::VerifyFull));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, root) = split("postgres://db/app?sslmode=require").unwrap();
        assert_eq!(
            (rest.as_str(), mode, root),
            ("postgres://db/app", Some(Mode::Require), None)
        );
    }

    #[test]
    fn the_two_fields_are_taken_out_of_a_key_value_string() {
        let (rest, mode, root) =
            split("host=db user=u password=secret sslmode=verify-ca sslrootcert='/ca.pem'")
                .unwrap();
        assert_eq!(rest, "host=db user=u password=secret");
        assert_eq!(mode, Some(Mode::VerifyCa));
        assert_eq!(root.as_deref(), Some("/ca.pem"));
    }

    #[test]
    fn a_bad_mode_is_named_and_the_url_is_not_quoted() {
        let e = config("postgres://u:hunter2@db/app?sslmode=verify").unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains("[store] url: sslmode=verify is not one of"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        let e = config("postgres://u:hunter2@db/app?sslmode=disable&sslrootcert=/ca.pem")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode=disable"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn a_missing_root_file_is_named() {
        let e = config(
            "postgres://u:hunter2@db/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("[store] url: sslrootcert=/nonexistent/ca.pem"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn the_modes_reach_tokio_postgres() {
        for (given, expected) in [
            ("", SslMode::Prefer),
            ("?sslmode=disable", SslMode::Disable),
            ("?sslmode=prefer", SslMode::Prefer),
            ("?sslmode=require", SslMode::Require),
        ] {
            let (config, _) = config(&format!("postgres://db/app{given}")).unwrap();
            assert_eq!(config.get_ssl_mode(), expected, "{given}");
        }
    }
}
