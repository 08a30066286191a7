//! OpenTelemetry traces over OTLP (HTTP/protobuf), configured by the
//! standard `OTEL_*` variables and off unless they ask for it: then no
//! layer is installed, the spans below are disabled call sites, and a
//! request pays one cached "disabled" check per span.
//!
//! The spans: one per forward-auth/auth-request decision (`decision`: host,
//! outcome, rule and the user name — no other identity value, no address,
//! no header), the session store lookup (`store lookup`) and every call to
//! the provider (`provider discovery|jwks|token|refresh|userinfo|
//! introspection`). A decision continues the trace of the proxy's W3C
//! `traceparent` (the proxy is trusted, or the request never gets this
//! far), and every provider call carries its own span's `traceparent`.
//!
//! Only this module names the OpenTelemetry crates; callers create spans
//! through the functions here and never see a tracer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use openidconnect::{AsyncHttpClient, HttpClientError, HttpRequest, HttpResponse};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tracing::field::Empty;
use tracing::{Instrument, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{Filtered, LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The tracing target of the spans exported as traces; the log layer
/// ignores it, so traces never change what the log shows.
pub const TRACE_TARGET: &str = "pocketgate::trace";

/// The service name when `OTEL_SERVICE_NAME` names none.
const SERVICE_NAME: &str = "pocketgate";

/// The tracer provider in force, kept to flush its last spans at exit.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether a trace layer is installed. Without one the spans below are
/// [`Span::none`]: the log's own layers would otherwise register, enter
/// and close each of them on every request (measured: about 10,000
/// instructions per signed-in request) for nothing.
static ON: AtomicBool = AtomicBool::new(false);

/// Whether traces are on (a trace layer is installed).
fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Traces on or off for the spans made from now on (the trace layer's
/// installation; tests that install one themselves).
pub(super) fn set_on(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("OTEL_EXPORTER_OTLP_ENDPOINT: the OTLP exporter cannot be built: {0} (fix: an http:// or https:// URL of an OTLP/HTTP receiver, e.g. http://127.0.0.1:4318, or unset it to turn traces off)")]
pub struct OtelError(String);

/// Whether the environment asks for traces (`env`: the variable's value).
/// `OTEL_SDK_DISABLED=true` and `OTEL_TRACES_EXPORTER=none` turn them off;
/// `OTEL_TRACES_EXPORTER=otlp` or an OTLP endpoint turns them on; anything
/// else leaves them off.
pub fn wanted(env: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return false;
    }
    if let Some(exporters) = set("OTEL_TRACES_EXPORTER") {
        return exporters
            .split(',')
            .any(|e| e.trim().eq_ignore_ascii_case("otlp"));
    }
    set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
}

/// The trace layer: [`TRACE_TARGET`] spans to the OTLP exporter.
pub(super) type TraceLayer<S> = Filtered<
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    Targets,
    S,
>;

/// The layer exporting [`TRACE_TARGET`] spans, when the environment asks
/// for traces; `None` (and nothing installed) otherwise.
pub(super) fn layer<S>() -> Result<Option<TraceLayer<S>>, OtelError>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if !wanted(|name| std::env::var(name).ok()) {
        return Ok(None);
    }
    if let Ok(p) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL") {
        if p.trim() != "http/protobuf" {
            eprintln!("pocketgate: OTEL_EXPORTER_OTLP_PROTOCOL={p} is not supported; traces are sent as http/protobuf");
        }
    }
    // The endpoint, headers and timeout come from the OTEL_EXPORTER_OTLP_*
    // variables, which the exporter reads itself.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .map_err(|e| OtelError(e.to_string()))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(SERVICE_NAME);
    }
    // The sampler (OTEL_TRACES_SAMPLER, _ARG) and the batch settings
    // (OTEL_BSP_*) are read from the environment by the SDK.
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer(SERVICE_NAME);
    let _ = PROVIDER.set(provider);
    let only_ours = Targets::new().with_target(TRACE_TARGET, LevelFilter::TRACE);
    set_on(true);
    Ok(Some(bridge(tracer).with_filter(only_ours)))
}

/// The bridge from `tracing` spans to OpenTelemetry, carrying only the
/// attributes the Tracing page lists: without the bridge's own extras (the
/// source file and line, the thread, busy and idle times, the target and
/// level), which say nothing to an operator and make every span larger.
fn bridge<S>(
    tracer: opentelemetry_sdk::trace::Tracer,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_level(false)
}

/// Send the spans not yet exported (at exit); nothing when traces are off.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(e) = provider.shutdown() {
            eprintln!("pocketgate: the last traces were not all sent: {e}");
        }
    }
}

/// The span of one decision about `host`, continuing the trace of the
/// proxy's `traceparent` (`headers`: the auth request's, from a trusted proxy).
pub fn decision_span(headers: &actix_web::http::header::HeaderMap, host: &str) -> Span {
    if !on() {
        return Span::none();
    }
    let span = tracing::info_span!(target: TRACE_TARGET, "decision", otel.kind = "server", host, outcome = Empty, rule = Empty, user = Empty);
    if !span.is_disabled() {
        let parent = TraceContextPropagator::new().extract(&Incoming::new(headers));
        let _ = span.set_parent(parent);
    }
    span
}

/// Record the answer on a decision span: the outcome, the rule (computed
/// only when traces are on) and the user name.
pub fn decided(span: &Span, outcome: &str, rule: impl FnOnce() -> String, user: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    span.record("outcome", outcome);
    span.record("rule", rule().as_str());
    if let Some(user) = user {
        span.record("user", user);
    }
}

/// The span of a session store lookup.
pub fn store_span() -> Span {
    if !on() {
        return Span::none();
    }
    tracing::info_span!(target: TRACE_TARGET, "store lookup", otel.kind = "client")
}

/// The span of one call to the provider's `endpoint`.
fn provider_span(endpoint: &'static str, method: &str) -> Span {
    if !on() {
        return Span::none();
    }
    tracing::info_span!(
        target: TRACE_TARGET,
        "provider",
        otel.name = format!("provider {endpoint}"),
        otel.kind = "client",
        endpoint,
        http.request.method = method,
        http.response.status_code = Empty,
    )
}

/// The provider's HTTP client for openidconnect requests to one endpoint:
/// each request in its own span, carrying that span's `traceparent`. Pass
/// `&Traced::new(&self.http, "token")` where the client itself went.
pub struct Traced<'a> {
    client: &'a reqwest::Client,
    endpoint: &'static str,
}

impl<'a> Traced<'a> {
    /// Requests to `endpoint` (the span's name) through `client`.
    pub fn new(client: &'a reqwest::Client, endpoint: &'static str) -> Self {
        Traced { client, endpoint }
    }
}

impl<'c> AsyncHttpClient<'c> for Traced<'_> {
    type Error = HttpClientError<reqwest::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(provider_call(self.client, self.endpoint, request))
    }
}

/// One openidconnect request, in its span.
async fn provider_call(
    client: &reqwest::Client,
    endpoint: &'static str,
    mut request: HttpRequest,
) -> Result<HttpResponse, HttpClientError<reqwest::Error>> {
    let span = outgoing(endpoint, request.method().clone(), request.headers_mut());
    let answer = client.call(request).instrument(span.clone()).await;
    answered(&span, answer.as_ref().ok().map(|a| a.status().as_u16()));
    answer
}

/// Send `request` to the provider's `endpoint` in its own span, carrying
/// that span's `traceparent`: `otel::send("userinfo", request)` for `request.send()`.
pub async fn send(
    endpoint: &'static str,
    request: reqwest::RequestBuilder,
) -> reqwest::Result<reqwest::Response> {
    let (client, request) = request.build_split();
    let mut request = request?;
    let span = outgoing(endpoint, request.method().clone(), request.headers_mut());
    let answer = client.execute(request).instrument(span.clone()).await;
    answered(&span, answer.as_ref().ok().map(|a| a.status().as_u16()));
    answer
}

/// The span of a request to the provider's `endpoint`, its `traceparent`
/// put into the request's `headers`.
fn outgoing(endpoint: &'static str, method: reqwest::Method, headers: &mut HeaderMap) -> Span {
    let span = provider_span(endpoint, method.as_str());
    inject(&span, headers);
    span
}

/// The provider's answer on the call's span (none: the call failed).
fn answered(span: &Span, status: Option<u16>) {
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
}

/// `traceparent` (and `tracestate`) of `span` into `headers`, when traced.
fn inject(span: &Span, headers: &mut HeaderMap) {
    if span.is_disabled() {
        return;
    }
    TraceContextPropagator::new().inject_context(&span.context(), &mut Outgoing(headers));
}

/// The W3C trace context headers of an incoming request, read as W3C
/// Trace Context asks: a `traceparent` sent more than once is no trace
/// context at all (the decision starts a new trace), and several
/// `tracestate` fields are one list, in order. nginx passes a client's
/// headers to `auth_request` as they came, repeated ones too.
struct Incoming<'h> {
    headers: &'h actix_web::http::header::HeaderMap,
    /// The `tracestate` fields joined, when there are several.
    tracestate: Option<String>,
}

impl<'h> Incoming<'h> {
    fn new(headers: &'h actix_web::http::header::HeaderMap) -> Self {
        let mut fields = headers.get_all(TRACESTATE);
        let tracestate = match (fields.next(), fields.next()) {
            (Some(first), Some(second)) => {
                let all = [first, second].into_iter().chain(fields);
                // a field that is not text spoils the list: no tracestate
                let text: Option<Vec<&str>> = all.map(|v| v.to_str().ok()).collect();
                Some(text.map(|t| t.join(",")).unwrap_or_default())
            }
            _ => None,
        };
        Incoming {
            headers,
            tracestate,
        }
    }
}

/// The W3C trace context header names.
const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case(TRACESTATE) {
            if let Some(joined) = &self.tracestate {
                return Some(joined);
            }
        }
        let mut values = self.headers.get_all(key);
        let first = values.next()?;
        if key.eq_ignore_ascii_case(TRACEPARENT) && values.next().is_some() {
            return None;
        }
        first.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.headers.keys().map(|k| k.as_str()).collect()
    }
}

/// The headers of an outgoing request.
struct Outgoing<'h>(&'h mut HeaderMap);

impl Injector for Outgoing<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator sets `tracestate` even when the trace has no state;
        // W3C Trace Context asks not to send an empty one.
        if value.is_empty() {
            return;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests;
