"""Traces through the proxies (test_traces.py): a real OpenTelemetry
Collector, the spans it received, and the proxies' configurations with their
own tracing switched on.

The collector is the one tests/otel.rs starts (the core distribution's OTLP
receiver and debug exporter, built by tests/otel/build-collector.sh into
``~/.cache/pocketgate-otel/src/otelcol-pocketgate``, or named by
``POCKETGATE_OTELCOL``). It listens for OTLP/HTTP on a loopback port and
prints every span it receives, with its resource, at detailed verbosity into
its log; ``spans()`` reads them back.

Tracing in the proxies, as docs/src/tracing.md shows it (the test module
checks that the page holds these very lines):

- Caddy: the ``tracing`` directive in every protected site, the receiver in
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` and the name in ``OTEL_SERVICE_NAME``
  (without it Caddy calls itself ``unknown_service:caddy``).
- Traefik: ``tracing.otlp.http.endpoint`` and ``tracing.serviceName`` in the
  static configuration.
- nginx: Debian's has no OpenTelemetry module; nothing to switch on.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from harness import configs
from harness.procs import Proc, free_port

# the receiver's port in the documented snippets (OTLP/HTTP's standard port)
DOC_PORT = 4318
CADDY_SERVICE = "caddy"
TRAEFIK_SERVICE = "traefik"
# Caddy: a line of every protected site, before `import pocketgate`
CADDY_TRACING = "\ttracing\n"
CADDY_ENV = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{DOC_PORT}",
    "OTEL_SERVICE_NAME": CADDY_SERVICE,
}
# Traefik: in the static configuration (traefik.yml)
TRAEFIK_TRACING = f"""tracing:
  serviceName: {TRAEFIK_SERVICE}
  otlp:
    http:
      endpoint: http://127.0.0.1:{DOC_PORT}/v1/traces
"""
# every exporter sends its batch within 200 ms (the Go and Rust SDKs both read it)
FAST_BATCHES = {"OTEL_BSP_SCHEDULE_DELAY": "200"}


def collector_binary() -> Path:
    """Where the collector is (it may not be there: the caller skips)."""
    named = os.environ.get("POCKETGATE_OTELCOL")
    if named:
        return Path(named)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "pocketgate-otel" / "src" / "otelcol-pocketgate"


def start_collector(workdir: Path) -> tuple[Proc, int]:
    """The collector with an OTLP/HTTP receiver on a loopback port: (its Proc, the port)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "otelcol.yaml"
    config.write_text(yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{port}"}}}},
        "exporters": {"debug": {"verbosity": "detailed"}},
        "service": {
            "telemetry": {"metrics": {"level": "none"}},
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}},
        },
    }, sort_keys=False))
    proc = Proc("otelcol", [collector_binary(), "--config", config], workdir)
    proc.wait_port(port, timeout=30)
    return proc, port


@dataclass
class Span:
    service: str = ""
    trace: str = ""
    parent: str = ""
    id: str = ""
    name: str = ""
    kind: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


_ATTRIBUTE = re.compile(r"^\s*-> ([^:]+): (.*)$")
_STR = re.compile(r"^Str\((.*)\)$")


def spans(output: str) -> list[Span]:
    """Every span in the debug exporter's output, with its resource's service name."""
    found: list[Span] = []
    service = ""
    in_resource = False
    for line in output.splitlines():
        if "ResourceSpans #" in line:
            in_resource, service = True, ""
            continue
        if line.lstrip().startswith(("ScopeSpans #", "Span #")):
            in_resource = False
            if line.lstrip().startswith("Span #"):
                found.append(Span(service=service))
            continue
        attribute = _ATTRIBUTE.match(line)
        if attribute:
            key, value = attribute.group(1), attribute.group(2)
            text = _STR.match(value)
            value = text.group(1) if text else value
            if in_resource and key == "service.name":
                service = value
            elif found and not in_resource:
                found[-1].attributes[key] = value
            continue
        if not found or in_resource or ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        fields = {"Trace ID": "trace", "Parent ID": "parent", "ID": "id", "Name": "name", "Kind": "kind"}
        if key in fields:
            setattr(found[-1], fields[key], value)
    return found


def wait_for_spans(collector: Proc, complete: Callable[[list[Span]], bool],
                   timeout: float = 20.0) -> list[Span]:
    """The collector's spans once ``complete`` says they are all there (polled
    every 100 ms for at most ``timeout``); the last reading otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        found = spans(collector.log_text(limit=5_000_000))
        if complete(found) or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)


def proxy_env(proxy: str, port: int) -> dict[str, str]:
    """The proxy's environment for tracing to the collector on ``port``."""
    if proxy == "caddy":
        return {**{k: v.replace(str(DOC_PORT), str(port)) for k, v in CADDY_ENV.items()}, **FAST_BATCHES}
    return dict(FAST_BATCHES)


def proxy_files(proxy: str, port: int) -> Callable[[configs.Ports, Path], dict[str, str] | None]:
    """The example's configuration with the proxy's tracing on, to the
    collector on ``port`` (nginx: the example as it is)."""
    def files(ports: configs.Ports, workdir: Path) -> dict[str, str] | None:
        if proxy == "caddy":
            text = configs.caddyfile(ports)
            traced, n = re.subn(r"^\timport pocketgate\n", CADDY_TRACING + "\timport pocketgate\n", text, flags=re.M)
            if n == 0:
                raise configs.ExampleDrift("examples/caddy/Caddyfile: no site imports pocketgate")
            return {"Caddyfile": traced}
        if proxy == "traefik":
            static, dynamic = configs.traefik_configs(ports, workdir)
            config = yaml.safe_load(static)
            config.update(yaml.safe_load(TRAEFIK_TRACING.replace(str(DOC_PORT), str(port))))
            return {"traefik.yml": yaml.safe_dump(config, sort_keys=False), "dynamic.yml": dynamic}
        return None
    return files
