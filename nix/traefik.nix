# services.pocketgate.traefik: the forward-auth wiring for services.traefik,
# imported by module.nix. The middleware is examples/traefik/dynamic.yml's,
# with this configuration's names put in (names.nix), added to
# services.traefik.dynamicConfigOptions with pocketgate's own router; the
# entry points get examples/traefik/traefik.yml's alias-header setting.
{ config, options, lib, ... }:

let
  inherit (lib)
    mkOption mkEnableOption mkIf mkBefore types optionals optionalAttrs filter concatMap concatStringsSep
    concatMapStringsSep attrNames elem toLower hasPrefix hasInfix replaceStrings splitString;

  cfg = config.services.pocketgate;
  final = cfg.settings;
  inherit (import ./names.nix { inherit lib final; })
    target globalNames assertionHeader extraNames nameWords urlHost loginUrls examples replace between
    protectsName defaultOnly defaultOnlyWarning;
  strList = types.listOf types.str;

  # --- Traefik: examples/traefik/dynamic.yml's middleware and public router ------
  traefikFile = "examples/traefik/dynamic.yml";
  traefikExample = builtins.readFile (examples + "/traefik/dynamic.yml");
  # The example's settings that carry no name of this configuration, as written there.
  traefikRequestHeaders = map (l: lib.removePrefix "          - " l)
    (filter (hasPrefix "          - ") (splitString "\n"
      (between traefikFile "        authRequestHeaders:\n" "\n\n" traefikExample)));
  traefikPublicRule = replace traefikFile "Host(`auth.example.com`)" "Host(`@host@`)"
    (between traefikFile "    pocketgate:\n      rule: \"" "\"\n" traefikExample);
  # The example's regex for its default names, built from this
  # configuration's: each name by its words with any separator (or none)
  # between them, in any case.
  traefikNameRegex = n: concatStringsSep "[^a-z0-9]*" (nameWords n);
  traefikRegex = "(?i)^(" + concatMapStringsSep "|" traefikNameRegex (globalNames ++ extraNames ++ [ assertionHeader ]) + ")$";
  traefikMiddleware = {
    forwardAuth = {
      address = "http://${target}/forward-auth";
      trustForwardHeader = if hasInfix "trustForwardHeader: false\n" traefikExample then false
        else throw "services.pocketgate: ${traefikFile} no longer sets trustForwardHeader: false; nix/module.nix must follow the example";
      authResponseHeadersRegex = traefikRegex;
      authRequestHeaders = traefikRequestHeaders;
    };
  };
  # The other modules' dynamic and static configuration (this module's own
  # definitions left out: the routers to wire are read from what the
  # operator defined, and this module adds to that).
  # Values are read as the module system would merge them, near enough to
  # find routers, rules and entry points: mkIf/mkMerge/mkOverride/mkOrder
  # resolved (priorities not weighed), attribute sets merged recursively (one
  # module's rule and another's tls make one router).
  thisFile = toString ./traefik.nix;
  plain = v:
    if builtins.isAttrs v && v ? _type then
      if v._type == "if" then (if v.condition then plain v.content else { })
      else if v._type == "merge" then lib.foldl' (a: c: lib.recursiveUpdate a (plain c)) { } v.contents
      else if v._type == "override" || v._type == "order" then plain v.content
      else v
    else if builtins.isAttrs v then lib.mapAttrs (_: plain) v
    else v;
  othersOf = opt: map (d: plain d.value) (filter (d: d.file != thisFile) (opt.definitionsWithLocations or [ ]));
  traefikOpts = options.services.traefik or { };
  traefikRoutersDefined = lib.foldl' (acc: v: lib.recursiveUpdate acc ((v.http or { }).routers or { })) { }
    (othersOf (traefikOpts.dynamicConfigOptions or { }));
  # Host(`a`) and Host(`a`, `b`) (Traefik v2) name hosts; the names, lower case.
  ruleHosts = rule: concatMap (m: map (h: toLower (builtins.head h))
      (filter builtins.isList (builtins.split "`([^`]+)`" (builtins.head m))))
    (filter builtins.isList (builtins.split "Host\\(([^)]*)\\)" rule));
  traefikLoginRouters = lib.imap0 (i: url: {
    name = if i == 0 then "pocketgate" else "pocketgate-${toString i}";
    host = toLower (urlHost url);
  }) loginUrls;
  traefikAuto = filter (r: !(elem r (map (l: l.name) traefikLoginRouters))
      && lib.any protectsName (ruleHosts (traefikRoutersDefined.${r}.rule or "")))
    (attrNames traefikRoutersDefined);
  traefikWired = if cfg.traefik.routers != null then cfg.traefik.routers else traefikAuto;
  traefikStaticOthers = othersOf (traefikOpts.staticConfigOptions or { });
  # Without a definition of its own the static configuration is NixOS's
  # default, which this module's definition would replace: it is kept.
  traefikStaticBase = if traefikStaticOthers == [ ] then (traefikOpts.staticConfigOptions.default or { }) else { };
  traefikEntryPoints = if cfg.traefik.entryPoints != [ ] then cfg.traefik.entryPoints
    else attrNames (lib.foldl' (acc: v: acc // (v.entryPoints or { })) (traefikStaticBase.entryPoints or { }) traefikStaticOthers);

  traefikChecks = map (r: {
      assertion = traefikRoutersDefined ? ${r};
      message = "services.pocketgate.traefik.routers names the router \"${r}\", which "
        + "services.traefik.dynamicConfigOptions.http.routers does not define";
    }) (if cfg.traefik.routers != null then cfg.traefik.routers else [ ])
    ++ map (file: {
      assertion = (config.services.traefik.${file} or null) == null;
      message = "services.pocketgate.traefik wires services.traefik.dynamicConfigOptions and staticConfigOptions, "
        + "which NixOS ignores when services.traefik.${file} is set; define the configuration in those options "
        + "instead (or wire pocketgate into your file by hand: examples/traefik/)";
    }) [ "dynamicConfigFile" "staticConfigFile" ]
    ++ [ {
      assertion = traefikEntryPoints != [ ];
      message = "services.pocketgate.traefik: no entry point to set aliasHeadersStrategy on; define "
        + "services.traefik.staticConfigOptions.entryPoints or name them in services.pocketgate.traefik.entryPoints";
    } ];
in
{
  options.services.pocketgate.traefik = {
    enable = mkEnableOption ''
      the forward-auth middleware `pocketgate` in services.traefik.dynamicConfigOptions, on the
      routers of the protected hosts, and pocketgate's own router for its public URL'';
    routers = mkOption {
      type = types.nullOr strList;
      default = null;
      example = [ "grafana" "sonarr" ];
      description = ''
        The routers (services.traefik.dynamicConfigOptions.http.routers) that get the middleware.
        null: every router whose rule names a protected host (Host(`...`)).
      '';
    };
    entryPoints = mkOption {
      type = strList;
      default = [ ];
      description = ''
        The entry points that get `http.aliasHeadersStrategy = "delete"` and that pocketgate's own
        router is on. []: every entry point of services.traefik.staticConfigOptions (the router on all).
      '';
    };
  };

  config = mkIf (cfg.enable && cfg.traefik.enable) {
    assertions = traefikChecks;
    # Routers no `hosts` entry names, under defaultPolicy (names.nix).
    warnings = concatMap (r: let hs = ruleHosts (traefikRoutersDefined.${r}.rule or ""); in
        map (defaultOnlyWarning "traefik" "services.traefik.dynamicConfigOptions.http.routers.\"${r}\"")
          (optionals (!(elem r traefikWired) && defaultOnly hs == hs) hs))
      (attrNames traefikRoutersDefined);

    # NixOS writes these as the file provider's file and the static file
    # (nixos/modules/services/web-servers/traefik.nix); each attribute set
    # here is written out literally so that reading the other modules'
    # definitions (the routers to wire) never needs this one's.
    services.traefik.dynamicConfigOptions = {
      http = {
        middlewares.pocketgate = traefikMiddleware;
        routers = lib.listToAttrs (map (l: lib.nameValuePair l.name ({
            rule = replaceStrings [ "@host@" ] [ l.host ] traefikPublicRule;
            service = "pocketgate";
          } // optionalAttrs (cfg.traefik.entryPoints != [ ]) { inherit (cfg.traefik) entryPoints; }))
          traefikLoginRouters
          ++ map (r: lib.nameValuePair r { middlewares = mkBefore [ "pocketgate" ]; }) traefikWired);
        services.pocketgate.loadBalancer.servers = [ { url = "http://${target}"; } ];
      };
    };
    services.traefik.staticConfigOptions = {
      entryPoints = lib.genAttrs traefikEntryPoints (ep:
        ((traefikStaticBase.entryPoints or { }).${ep} or { }) // { http.aliasHeadersStrategy = "delete"; });
    };
  };
}
