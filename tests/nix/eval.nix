# Evaluate services.pocketgate with the stand-ins and the given modules, and
# report what a NixOS system would get from it, as JSON (nix-instantiate
# --eval --strict --json). Failed assertions throw, as NixOS does when it
# builds the system.
#
#   nix-instantiate --eval --strict --json tests/nix/eval.nix \
#     --arg lib 'import /path/to/nixpkgs/lib' --arg modules '[ ./a.nix ./b.nix ]' \
#     --argstr store /tmp/store --argstr pocketgate /tmp/pkg
{ lib, modules, store ? "/nix/store", pocketgate ? "/stand-in/pocketgate" }:

let
  pkgs = import ./pkgs.nix { inherit store pocketgate; };
  evaluated = lib.evalModules {
    modules = [
      ./stand-ins.nix
      ../../nix/module.nix
      {
        _module.args.pkgs = pkgs;
        services.pocketgate.package = pkgs.pocketgateStandIn;
      }
    ] ++ modules;
  };
  config = evaluated.config;
  failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  checked = config.services.pocketgate.configFile;
in
if failed != [ ] then
  throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}"
else {
  inherit (config) warnings;
  config = {
    text = checked.config.text;
    path = checked.config.outPath;
    checked = checked.outPath;
    build = checked.script;
  };
  unit = config.systemd.services.pocketgate or null;
  etc = lib.mapAttrs (_: e: e.source.outPath or e.source) config.environment.etc;
  caddy = {
    inherit (config.services.caddy) extraConfig;
    virtualHosts = lib.mapAttrs (_: v: v.extraConfig) config.services.caddy.virtualHosts;
  };
  traefik = {
    inherit (config.services.traefik) staticConfigOptions dynamicConfigOptions;
  };
  nginx = {
    inherit (config.services.nginx) appendHttpConfig recommendedProxySettings;
    virtualHosts = lib.mapAttrs (_: v: {
      inherit (v) extraConfig serverName serverAliases;
      locations = lib.mapAttrs (_: l: {
        inherit (l) proxyPass extraConfig proxyWebsockets recommendedProxySettings;
      }) v.locations;
    }) config.services.nginx.virtualHosts;
  };
}
