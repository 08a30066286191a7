#!/bin/sh
# Build the OpenTelemetry Collector that tests/otel.rs starts: the core
# distribution's OTLP receiver and debug exporter, nothing else, made with
# the collector's own builder (ocb) through the Go module proxy. The result
# is cached in ~/.cache/pocketgate-otel/src/otelcol-pocketgate; a second run
# does nothing. Needs Go; bounded to 50 minutes (the first build compiles
# the collector's dependencies: about half an hour on a busy 2-core machine).
set -eu
VERSION=v0.165.0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/pocketgate-otel"
BIN="$CACHE/src/otelcol-pocketgate"
if [ -x "$BIN" ]; then
    echo "collector: $BIN"
    exit 0
fi
command -v go >/dev/null || { echo "SKIPPED: no Go toolchain to build the collector"; exit 0; }
mkdir -p "$CACHE"
cd "$CACHE"
GOBIN="$CACHE" timeout 300 go install "go.opentelemetry.io/collector/cmd/builder@$VERSION"
cat > builder.yaml <<YAML
dist:
  name: otelcol-pocketgate
  description: OTLP receiver and debug exporter, for pocketgate's trace test
  output_path: ./src
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver $VERSION
exporters:
  - gomod: go.opentelemetry.io/collector/exporter/debugexporter $VERSION
YAML
timeout 900 ./builder --config builder.yaml
echo "collector: $BIN"
