//! The dev HTTP endpoint (`--dev-http`, loopback by default): what a page
//! needs to reach a server with no CA-signed certificate. `GET
//! /certificate-hashes` answers the SHA-256 hashes of the browser
//! certificate presented now and of the next one (hex), with the
//! WebTransport URL, for `new WebTransport(url, { serverCertificateHashes
//! })`; with `--dev-page`, `/` is the demo page (clients/web/demo) and
//! `/partyline.js` the TypeScript client's built module (clients/web/dist).

use super::config::WebTransportConfig;
use super::web::WEBTRANSPORT_PATH;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The demo page and the client's modules, built into the server.
const FILES: [(&str, &str, &str); 4] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../clients/web/demo/index.html"),
    ),
    (
        "/partyline.js",
        JS,
        include_str!("../../clients/web/dist/partyline.js"),
    ),
    (
        "/client.js",
        JS,
        include_str!("../../clients/web/dist/client.js"),
    ),
    (
        "/codec.js",
        JS,
        include_str!("../../clients/web/dist/codec.js"),
    ),
];
const JS: &str = "text/javascript; charset=utf-8";

/// Serves until the server stops. `quic` is the server's UDP address:
/// the URL a page connects to.
pub(crate) async fn serve(listener: TcpListener, config: WebTransportConfig, quic: SocketAddr) {
    let hashes = config.browser_certificates.clone();
    // A server on every address is reached on this machine's loopback.
    let reach = match quic.ip().is_unspecified() {
        true => SocketAddr::from(([127, 0, 0, 1], quic.port())),
        false => quic,
    };
    let url = format!("https://{reach}{WEBTRANSPORT_PATH}");
    let mut app = Router::new().route(
        "/certificate-hashes",
        get(move || {
            let list = hashes
                .as_ref()
                .map(|certs| certs.hashes_hex().to_vec())
                .unwrap_or_default();
            let body = serde_json::json!({ "url": url, "sha256": list });
            // Any page may read it: the hashes are what the server shows
            // everyone who connects.
            async move {
                (
                    [
                        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                        (header::CACHE_CONTROL, "no-store"),
                    ],
                    axum::Json(body),
                )
            }
        }),
    );
    if config.dev_page {
        for (path, kind, body) in FILES {
            app = app.route(path, get(move || async move { file(kind, body) }));
        }
    }
    let app = app.fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") });
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "dev HTTP endpoint stopped");
    }
}

fn file(kind: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, kind)], body)
}
