# pocketgate, built from this repository with Cargo.lock (no network beyond
# the crates it pins). `pkgs.callPackage ./package.nix { }`.
#
# A production build: `demo` (the embedded development identity provider and
# its crypto crates) is left out, as `cargo build --no-default-features`. The
# test suite needs Caddy, nginx, Traefik, Redis and node; it runs with
# ./test.sh, not inside the Nix build.
{ lib, rustPlatform }:

let
  manifest = lib.importTOML ../Cargo.toml;
  # What cargo needs: manifests, lock file, sources, the workspace crates and
  # the bench targets Cargo.toml declares. Never target/, test caches or fuzz.
  skipped = [ "target" ".git" ".cache" "node_modules" "fuzz" "result" ];
in
rustPlatform.buildRustPackage {
  pname = manifest.package.name;
  inherit (manifest.package) version;

  src = lib.cleanSourceWith {
    name = "pocketgate-source";
    src = ../.;
    filter = path: type: !(builtins.elem (baseNameOf path) skipped);
  };
  cargoLock.lockFile = ../Cargo.lock;

  cargoBuildFlags = [ "--bin" "pocketgate" ];
  buildNoDefaultFeatures = true;
  doCheck = false;

  meta = {
    inherit (manifest.package) description;
    license = with lib.licenses; [ mit asl20 ];
    mainProgram = "pocketgate";
    platforms = lib.platforms.linux;
  };
}
