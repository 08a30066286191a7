# Stand-ins for the few NixOS options services.pocketgate sets or reads, with
# the types NixOS gives them (nixos/modules/...), so that lib.evalModules
# merges definitions from several modules exactly as a NixOS system would
# without the rest of nixpkgs.
{ config, lib, ... }:

let
  inherit (lib) mkOption types;
  anyAttrs = types.attrsOf types.anything;
  jsonValue = types.nullOr (types.oneOf [
    types.bool types.int types.float types.str (types.lazyAttrsOf jsonValue) (types.listOf jsonValue)
  ]) // { description = "JSON value"; emptyValue.value = { }; };
in
{
  options = {
    # nixos/modules/misc/assertions.nix
    assertions = mkOption {
      type = types.listOf (types.submodule {
        options.assertion = mkOption { type = types.bool; };
        options.message = mkOption { type = types.str; };
      });
      default = [ ];
    };
    warnings = mkOption { type = types.listOf types.str; default = [ ]; };

    # nixos/modules/system/etc/etc.nix
    environment.etc = mkOption {
      type = types.attrsOf (types.submodule {
        options.source = mkOption { type = types.unspecified; };
      });
      default = { };
    };

    # nixos/modules/system/boot/systemd.nix (the keys the module sets)
    systemd.services = mkOption {
      type = types.attrsOf (types.submodule {
        options = {
          description = mkOption { type = types.str; default = ""; };
          wantedBy = mkOption { type = types.listOf types.str; default = [ ]; };
          wants = mkOption { type = types.listOf types.str; default = [ ]; };
          after = mkOption { type = types.listOf types.str; default = [ ]; };
          reloadTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; };
          restartTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; };
          restartIfChanged = mkOption { type = types.bool; default = true; };
          serviceConfig = mkOption { type = anyAttrs; default = { }; };
        };
      });
      default = { };
    };

    # nixos/modules/services/web-servers/caddy
    services.caddy = {
      enable = mkOption { type = types.bool; default = false; };
      extraConfig = mkOption { type = types.lines; default = ""; };
      virtualHosts = mkOption {
        type = types.attrsOf (types.submodule ({ name, ... }: {
          options.hostName = mkOption { type = types.str; default = name; };
          options.serverAliases = mkOption { type = types.listOf types.str; default = [ ]; };
          options.extraConfig = mkOption { type = types.lines; default = ""; };
        }));
        default = { };
      };
    };

    # nixos/modules/services/web-servers/traefik.nix: JSON values, the
    # dynamic configuration written to the file provider's file, the static
    # one with providers.file.filename added
    services.traefik = {
      enable = mkOption { type = types.bool; default = false; };
      staticConfigOptions = mkOption { type = jsonValue; default = { entryPoints.http.address = ":80"; }; };
      dynamicConfigOptions = mkOption { type = jsonValue; default = { }; };
      staticConfigFile = mkOption { type = types.nullOr types.path; default = null; };
      dynamicConfigFile = mkOption { type = types.nullOr types.path; default = null; };
    };

    # nixos/modules/services/web-servers/nginx
    services.nginx = {
      enable = mkOption { type = types.bool; default = false; };
      recommendedProxySettings = mkOption { type = types.bool; default = false; };
      appendHttpConfig = mkOption { type = types.lines; default = ""; };
      virtualHosts = mkOption {
        type = types.attrsOf (types.submodule {
          options.serverName = mkOption { type = types.nullOr types.str; default = null; };
          options.serverAliases = mkOption { type = types.listOf types.str; default = [ ]; };
          options.extraConfig = mkOption { type = types.lines; default = ""; };
          options.locations = mkOption {
            type = types.attrsOf (types.submodule {
              options.proxyPass = mkOption { type = types.nullOr types.str; default = null; };
              options.proxyWebsockets = mkOption { type = types.bool; default = false; };
              # as NixOS: a location follows the global setting unless it says otherwise
              options.recommendedProxySettings = mkOption {
                type = types.bool;
                default = config.services.nginx.recommendedProxySettings;
              };
              options.fastcgiParams = mkOption { type = types.attrsOf types.str; default = { }; };
              options.extraConfig = mkOption { type = types.lines; default = ""; };
            });
            default = { };
          };
        });
        default = { };
      };
    };
  };
}
