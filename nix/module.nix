# services.pocketgate: pocketgate as a NixOS service.
#
# The options speak the seed's words in NixOS's camelCase (policy, claimRoles,
# bypassPaths, bypassResources, allowedNetworks, allowedGroups,
# caseInsensitivePaths) and map onto pocketgate's snake_case keys; `settings`
# takes every other key as it is written in pocketgate.toml. Because NixOS
# merges options from every module, each service's own module can add its
# host:
#
#   services.pocketgate.hosts."grafana.${domain}" = {
#     policy = "admins";
#     bypassPaths = [ "/api/health" ];
#   };
#
# The configuration is written as JSON (pocketgate reads JSON by its .json
# extension) and checked at build time with `pocketgate check --offline`, so a
# host that names an undefined policy fails `nixos-rebuild`, with pocketgate's
# own message. Secrets are only ever files, handed to the service by systemd
# (LoadCredential); never the Nix store.
#
# caddy.enable / nginx.enable (here) and traefik.enable (traefik.nix) wire
# the proxy: the forward-auth snippet comes from this repository's examples/
# (the same text operators paste by hand), with only the names this
# configuration uses put in (names.nix): the listen address, identity header
# names, the assertion header and the cookie name. nginx gets the snippet's
# backend headers in every location of a protected host too, beside what
# NixOS's recommendedProxySettings and proxyWebsockets write there.
{ config, lib, pkgs, ... }:

let
  inherit (lib)
    mkOption mkEnableOption mkIf mkMerge mkDefault mkBefore types
    literalExpression optional optionals optionalAttrs filterAttrs mapAttrs
    mapAttrsToList concatMap concatMapStrings concatStringsSep attrNames
    attrValues elem filter unique toLower hasPrefix hasInfix replaceStrings
    splitString escapeRegex concatMapStringsSep;

  cfg = config.services.pocketgate;

  # --- the JSON value type of `settings` (pkgs.formats.json's, written out so
  # the module needs nothing of pkgs to evaluate). No Nix paths: toJSON would
  # copy the file into the world-readable store; files are named as strings.
  jsonValue = types.nullOr (types.oneOf [
    types.bool types.int types.float types.str
    (types.attrsOf jsonValue) (types.listOf jsonValue)
  ]) // { description = "JSON value (files as strings, never Nix paths)"; };

  strList = types.listOf types.str;

  # Drop nulls and empty lists: pocketgate's own defaults apply to what is unset.
  clean = attrs: filterAttrs (_: v: v != null && v != [ ]) attrs;

  # --- typed options -> pocketgate keys (options.nix) ----------------------------
  inherit (import ./options.nix { inherit lib clean strList; }) policyOptions policyKeys hostOptions hostKeys;

  # --- secrets: files only, handed over by systemd -----------------------------
  credentialsDir = "/run/credentials/pocketgate.service";
  credentials = filterAttrs (_: file: file != null) {
    client_secret = cfg.oidc.clientSecretFile;
    session_secret = cfg.session.secretFile;
    assertion_key = cfg.assertion.keyFile;
  };
  stateDir = "/var/lib/pocketgate";
  stateDirSetting = (final.session or { }).state_dir or stateDir;
  # A stable path: a new configuration changes only the unit's reload
  # trigger, so a switch reloads (SIGHUP) instead of restarting.
  configPath = "/etc/pocketgate/pocketgate.json";

  # The configuration as written, and the same file once `check --offline` has
  # passed it (the unit runs only the checked one).
  final = cfg.settings;
  inherit (import ./names.nix { inherit lib final; })
    listen target settingsHosts globalHeaders globalNames assertionHeader uniqueCi extraNames urlHost loginUrls
    protectedHosts examples replace between wildcardSuffixes loginHosts defaultOnly defaultOnlyWarning nameWords;
  rawFile = pkgs.writeText "pocketgate.json" (builtins.toJSON final);
  # Secrets an environmentFile may carry: the build-time check stands a
  # placeholder in for each one no file option sets.
  placeholderEnv = optionals (cfg.environmentFile != null) (
    optional (cfg.oidc.clientSecretFile == null) "POCKETGATE_OIDC__CLIENT_SECRET=placeholder-of-the-build-time-check"
    ++ optional (cfg.session.secretFile == null) "POCKETGATE_SESSION__SECRET=cGxhY2Vob2xkZXItb2YtdGhlLWJ1aWxkLXRpbWUtY2hlY2sh"
  );
  checkedFile = pkgs.runCommand "pocketgate.json" { config = rawFile; } ''
    ${concatMapStrings (e: "export ${e}\n") placeholderEnv}${cfg.package}/bin/pocketgate check --offline -c "$config"
    cp "$config" "$out"
  '';

  lowPort = lib.toInt (lib.last (splitString ":" listen)) < 1024;
  cookieName = (final.session or { }).cookie_name or "pocketgate";
  # Stripped by name: everything `X-Remote-*` does not already cover.
  stripNames = uniqueCi (filter (n: !(hasPrefix "x-remote-" (toLower n))) globalNames ++ extraNames);
  # Caddy strips every spelling of a name (X_Remote-User, X.Remote.User) by
  # one of its words: `request_header -*word*` removes each header whose name
  # contains it, in any case. The longest word (the last of equals) is used;
  # a word that the headers the wiring relies on contain would strip them too.
  stripWord = n: lib.foldl' (a: w: if builtins.stringLength w >= builtins.stringLength a then w else a) "" (nameWords n);
  neededHeaders = [ "accept" "accept-encoding" "accept-language" "authorization" "cache-control" "connection"
    "content-length" "content-type" "cookie" "host" "if-modified-since" "if-none-match" "origin" "range" "referer"
    "sec-fetch-dest" "sec-fetch-mode" "sec-fetch-site" "sec-websocket-extensions" "sec-websocket-key"
    "sec-websocket-protocol" "sec-websocket-version" "upgrade" "user-agent" "x-requested-with" ];
  wordClashes = n: filter (h: hasInfix (stripWord n) h) neededHeaders;
  caddyStripWords = filter (w: w != "remote") (lib.unique (map stripWord (stripNames ++ [ assertionHeader ])));

  # The origin's host (and port when it is not the scheme's own) as the site
  # address, as examples/ writes `auth.example.com {`.
  urlAddress = url:
    let m = builtins.match "(https?)://([^/]+)/?" url;
    in if m == null then throw "services.pocketgate: ${url} is not an http(s) origin"
       else if builtins.elemAt m 0 == "https" then builtins.elemAt m 1 else url;

  cookieRegex = escapeRegex cookieName;
  underscored = replaceStrings [ "-" ] [ "_" ];

  caddyFile = "examples/caddy/Caddyfile";
  caddyExample = builtins.readFile (examples + "/caddy/Caddyfile");
  caddySnippet = lib.pipe (between caddyFile "\n(pocketgate) {\n" "\n}\n" caddyExample) [
    (replace caddyFile "forward_auth 127.0.0.1:4180 {" "forward_auth ${target} {")
    (replace caddyFile "\t\trequest_header -*webauth*\n"
      (concatMapStrings (w: "\t\trequest_header -*${w}*\n") (filter (w: w != stripWord assertionHeader) caddyStripWords)))
    (replace caddyFile "\t\trequest_header -*pocketgate*\n"
      (lib.optionalString (stripWord assertionHeader != "remote") "\t\trequest_header -*${stripWord assertionHeader}*\n"))
    (replace caddyFile
      "\t\t\tcopy_headers X-Remote-User X-Remote-Email X-Remote-Name X-Remote-Groups X-Pocketgate-Assertion\n\t\t\tcopy_headers X-WEBAUTH-USER\n"
      ("\t\t\tcopy_headers ${concatStringsSep " " (globalNames ++ [ assertionHeader ])}\n"
        + lib.optionalString (extraNames != [ ]) "\t\t\tcopy_headers ${concatStringsSep " " extraNames}\n"))
    (replace caddyFile "pocketgate(?:_[0-7]" "${cookieRegex}(?:_[0-7]")
  ];
  caddyPublic = replace caddyFile "127.0.0.1:4180" target
    (between caddyFile "\nauth.example.com {\n" "\n}\n" caddyExample);

  nginxFile = "examples/nginx/nginx.conf";
  snippetFile = "examples/nginx/pocketgate.conf";
  nginxExample = builtins.readFile (examples + "/nginx/nginx.conf");
  # $pg_<name> for a header's value; never one of the snippet's own variables.
  ownVars = [ "user" "email" "name" "groups" "assertion" "location" "auth_status" "backend_cookie" ];
  nginxVar = n:
    let v = lib.removePrefix "x_" (underscored (toLower n));
    in "$pg_" + (if elem v ownVars || hasPrefix "cookie_" v then "header_${v}" else v);
  upstreamVar = n: "$upstream_http_${underscored (toLower n)}";
  nginxHttp = lib.pipe (between nginxFile "    # BEGIN pocketgate-http" "    # END pocketgate-http\n" nginxExample) [
    (t: "    # BEGIN pocketgate-http" + t)
    (replace nginxFile "server 127.0.0.1:4180;" "server ${target};")
    (replace nginxFile "pocketgate(?:_[0-7]" "${cookieRegex}(?:_[0-7]")
  ];
  nginxPublic = between nginxFile "        # BEGIN pocketgate-public-url\n" "        # END pocketgate-public-url\n" nginxExample;
  headerField = f: default: text: lib.pipe text [
    (replace snippetFile (upstreamVar default + ";") (upstreamVar globalHeaders.${f} + ";"))
    (replace snippetFile "proxy_set_header ${default} " "proxy_set_header ${globalHeaders.${f}} ")
  ];
  nginxSnippet = lib.pipe (builtins.readFile (examples + "/nginx/pocketgate.conf")) [
    (headerField "user" "X-Remote-User")
    (headerField "email" "X-Remote-Email")
    (headerField "name" "X-Remote-Name")
    (headerField "groups" "X-Remote-Groups")
    (replace snippetFile "auth_request_set $pg_webauth_user $upstream_http_x_webauth_user;\n"
      (concatMapStrings (n: "auth_request_set ${nginxVar n} ${upstreamVar n};\n") extraNames))
    (replace snippetFile "proxy_set_header X-WEBAUTH-USER    $pg_webauth_user;\n"
      (concatMapStrings (n: "proxy_set_header ${n}    ${nginxVar n};\n") extraNames))
    (replace snippetFile "$upstream_http_x_pocketgate_assertion;" "${upstreamVar assertionHeader};")
    (replace snippetFile "proxy_set_header X-Pocketgate-Assertion $pg_assertion;" "proxy_set_header ${assertionHeader} $pg_assertion;")
  ];

  # --- the snippet's backend lines in every location ----------------------------
  # nginx inherits a server's proxy_set_header lines only into a location that
  # sets none of its own. NixOS writes such lines into a location
  # (nixos/modules/services/web-servers/nginx/default.nix, mkLocations):
  #   proxyWebsockets                -> proxy_http_version 1.1;
  #                                     proxy_set_header Upgrade $http_upgrade;
  #                                     proxy_set_header Connection $connection_upgrade;
  #   proxyPass != null && recommendedProxySettings (a location's default is
  #   the global one)                -> include recommendedProxyConfig, i.e.
  #     proxy_set_header Host $host; X-Real-IP $remote_addr;
  #     X-Forwarded-For $proxy_add_x_forwarded_for; X-Forwarded-Proto $scheme;
  #     X-Forwarded-Host $host; X-Forwarded-Server $host;
  # So every location of a protected host gets the snippet's proxy_set_header
  # lines too (the identity headers, Cookie, the assertion, and Host,
  # X-Forwarded-*, Upgrade, Connection), less the names NixOS already sets
  # there, which nginx would otherwise send twice. proxy_http_version is not
  # an array directive: the location inherits the snippet's from the server.
  nixosRecommendedHeaders = [ "host" "x-real-ip" "x-forwarded-for" "x-forwarded-proto" "x-forwarded-host" "x-forwarded-server" ];
  nixosWebsocketHeaders = [ "upgrade" "connection" ];
  nixosLocationHeaders = loc:
    optionals ((loc.proxyPass or null) != null && (loc.recommendedProxySettings or false)) nixosRecommendedHeaders
    ++ optionals (loc.proxyWebsockets or false) nixosWebsocketHeaders;
  backendHeaderLines = filter (hasPrefix "proxy_set_header ") (splitString "\n"
    (between snippetFile "# --- what the backend receives" "# --- the subrequest to pocketgate" nginxSnippet));
  headerOfLine = l: toLower (builtins.elemAt (filter (w: w != "") (splitString " " l)) 1);
  locationHeaderLines = loc: filter (l: !(elem (headerOfLine l) (nixosLocationHeaders loc))) backendHeaderLines;
  locationLines = loc: "# pocketgate: the snippet's backend headers again (a location that sets any header of its own inherits none of the server's)\n"
    + concatMapStrings (l: l + "\n") (locationHeaderLines loc);
  nginxProtected = name: cfg.enable && cfg.nginx.enable && elem name protectedHosts;

  # --- checks that NixOS reports before anything is built -----------------------
  policyNames = attrNames (final.policies or { });
  policyCheck = where: name: {
    assertion = name == null || elem name policyNames;
    message = "${where} = \"${toString name}\": no such policy (defined: ${concatStringsSep ", " policyNames}); "
      + "define services.pocketgate.policies.\"${toString name}\" or name one of those";
  };
  hostWhere = i: h:
    if cfg.hosts ? ${h.host} then "services.pocketgate.hosts.\"${h.host}\""
    else "services.pocketgate.settings.hosts.${toString i} (${h.host})";
  indexed = lib.imap0 (i: h: { inherit i h; }) settingsHosts;
  hostPolicyChecks = concatMap ({ i, h }:
    [ (policyCheck "${hostWhere i h}.policy" (h.policy or null)) ]
    ++ lib.imap0 (j: r: policyCheck "${hostWhere i h}.rules.${toString j}.policy" (r.policy or null)) (h.rules or [ ]))
    indexed;
  duplicateHosts = let lowered = map (h: toLower (lib.removeSuffix "." h)) protectedHosts;
    in filter (h: lib.count (x: x == h) lowered > 1) (unique lowered);
  inline = path: lib.attrByPath path null final;
  inlineSecret = path: fix: {
    assertion = inline path == null;
    message = "services.pocketgate.settings.${concatStringsSep "." path}: a secret written in the configuration "
      + "ends up in the world-readable Nix store; ${fix}";
  };
  # A secret file named by a Nix path (./secret), an interpolated path or a
  # derivation is (or will be) a copy in the world-readable store.
  inStore = file: builtins.isPath file
    || (builtins.isString file && (builtins.hasContext file || hasPrefix "${builtins.storeDir}/" file));
  storePath = name: file: {
    assertion = file == null || !(inStore file);
    message = "services.pocketgate.${name} (${toString file}) is in the Nix store, or would be copied there, "
      + "where every user can read it; give the location of a file outside it as a plain string: \"/run/secrets/...\"";
  };
  # Secret files named in `settings` would skip LoadCredential: the service's
  # dynamic user could not read them, and their path may be a store path.
  fileKey = path: option: {
    assertion = let v = inline path; in v == null || hasPrefix "${credentialsDir}/" v;
    message = "services.pocketgate.settings.${concatStringsSep "." path}: name the file with "
      + "services.pocketgate.${option} instead, which hands it to the service through systemd's LoadCredential";
  };
  redisUrl = (final.session or { }).redis_url or null;
  # userinfo (redis://user:pw@host) or a password parameter (redis+unix:///s?pass=...)
  redisPassword = url: builtins.match ".*://[^/@]*@.*" url != null
    || builtins.match ".*[?&](pass|password)=.*" url != null;
  # nginx: what would let a request past the snippet's identity headers.
  # - A location that sets any proxy_set_header of its own makes nginx drop
  #   every one the snippet sets for the server (the identity headers too).
  #   NixOS adds such lines for recommendedProxySettings and proxyWebsockets,
  #   so the wiring writes the snippet's backend lines into every location of
  #   a protected host as well (locationLines); what is left to refuse is a
  #   location whose own extraConfig sets one of those names again.
  # - fastcgi/uwsgi/scgi/grpc backends get the client's headers as they are
  #   (HTTP_X_REMOTE_USER): the snippet's proxy_set_header lines never apply.
  # - Another virtual host serving the same name (serverName/serverAliases
  #   under another attribute name) may be the one nginx picks.
  passes = [ "fastcgi_pass" "uwsgi_pass" "scgi_pass" "grpc_pass" ];
  nginxVhosts = config.services.nginx.virtualHosts;
  setHeaderNames = text: map (m: toLower (builtins.head m))
    (filter builtins.isList (builtins.split "proxy_set_header[[:space:]]+([^[:space:];]+)" text));
  nginxChecks = concatMap (host:
    let
      vhost = nginxVhosts.${host} or { locations = { }; extraConfig = ""; };
      where = "services.nginx.virtualHosts.\"${host}\"";
      # the operator's own lines: the merged extraConfig without the snippet
      own = replaceStrings [ nginxSnippet ] [ "" ] (vhost.extraConfig or "");
      others = lib.attrNames (filterAttrs (name: v: name != host
        && (elem (toLower host) (map toLower (optional ((v.serverName or null) != null) v.serverName ++ (v.serverAliases or [ ])))))
        nginxVhosts);
    in
    mapAttrsToList (path: loc:
      let
        ownLoc = replaceStrings [ (locationLines loc) ] [ "" ] (loc.extraConfig or "");
        twice = filter (n: elem n (map headerOfLine (locationHeaderLines loc))) (unique (setHeaderNames ownLoc));
      in {
        assertion = twice == [ ];
        message = "${where}.locations.\"${path}\" sets proxy_set_header ${concatStringsSep ", " twice} in its "
          + "extraConfig, which pocketgate's wiring sets on every location of a protected host (the identity "
          + "headers from pocketgate's answer, the others as the snippet sends them), so nginx would send the "
          + "header twice; remove the line from the location";
      }) (vhost.locations or { })
    ++ mapAttrsToList (path: loc: {
      assertion = (loc.fastcgiParams or { }) == { } && !(lib.any (p: hasInfix p (loc.extraConfig or "")) passes);
      message = "${where}.locations.\"${path}\" passes requests to a FastCGI/uwsgi/SCGI/gRPC backend, which "
        + "gets the client's own X-Remote-* headers: pocketgate's snippet protects proxy_pass backends only; "
        + "put the application behind proxy_pass (e.g. php-fpm behind a local nginx or Caddy server)";
    }) (vhost.locations or { })
    ++ [
      {
        assertion = !(lib.any (p: hasInfix p own) passes) && !(hasInfix "location" own && hasInfix "proxy_set_header" own);
        message = "${where}.extraConfig holds a location with its own proxy_set_header, or a FastCGI/uwsgi/SCGI/gRPC "
          + "pass, where the identity headers of pocketgate's snippet do not apply; use locations.<path> with "
          + "proxyPass instead (the wiring puts the identity headers into each of those)";
      }
      {
        assertion = others == [ ];
        message = "services.nginx.virtualHosts.${concatMapStringsSep ", " (n: "\"${n}\"") others} also serve "
          + "${host} (serverName or serverAliases), and nginx may answer from that server, which pocketgate's "
          + "wiring does not reach; define the site as ${where} instead";
      }
    ])
    protectedHosts;

  # Caddy: a protected site whose backend is FastCGI (php_fastcgi, or
  # reverse_proxy with `transport fastcgi`) is refused as nginx's FastCGI
  # passes are: CGI variables are where header spellings fold together, and
  # the wiring is proven with HTTP backends only. Header words that would
  # strip a needed header are refused too.
  caddyVhosts = config.services.caddy.virtualHosts;
  caddyTokens = text: filter builtins.isString (builtins.split "[[:space:]]+" text);
  caddyFastcgi = text: let t = caddyTokens text; in hasInfix "php_fastcgi" text
    || lib.any (i: builtins.elemAt t i == "transport" && builtins.elemAt t (i + 1) == "fastcgi")
      (lib.range 0 (builtins.length t - 2));
  # Snippets of services.caddy.extraConfig (`(name) { ... }`), by name: a
  # site that imports one gets its directives, FastCGI ones included.
  caddyGlobalParts = builtins.split "\\(([^()[:space:]]+)\\)[[:space:]]*\\{" (config.services.caddy.extraConfig or "");
  # The text of a block up to its closing brace, from the text after its `{`.
  caddyBlock = text: (lib.foldl' (acc: part:
      if acc.depth == 0 then acc
      else if builtins.isList part then
        (let d = acc.depth + (if builtins.head part == "{" then 1 else -1);
         in { depth = d; text = if d == 0 then acc.text else acc.text + builtins.head part; })
      else acc // { text = acc.text + part; })
    { depth = 1; text = ""; } (builtins.split "([{}])" text)).text;
  caddySnippets = lib.listToAttrs (map (i: lib.nameValuePair
      (builtins.head (builtins.elemAt caddyGlobalParts i))
      (caddyBlock (builtins.elemAt caddyGlobalParts (i + 1))))
    (filter (i: builtins.isList (builtins.elemAt caddyGlobalParts i)) (lib.range 0 (builtins.length caddyGlobalParts - 2))));
  caddyImports = text: let t = caddyTokens text; in
    map (i: builtins.elemAt t (i + 1)) (filter (i: builtins.elemAt t i == "import") (lib.range 0 (builtins.length t - 2)));
  # The snippets `text` imports (through snippets too, a bounded depth) that use FastCGI.
  caddyFastcgiImports = depth: text: lib.unique (concatMap (n:
      let body = caddySnippets.${n}; in
      optional (caddyFastcgi body) n ++ optionals (depth > 0) (caddyFastcgiImports (depth - 1) body))
    (filter (n: n != "pocketgate" && caddySnippets ? ${n}) (caddyImports text)));
  caddyChecks = concatMap (name:
    let
      v = caddyVhosts.${name};
      served = map toLower ([ (v.hostName or name) ] ++ (v.serverAliases or [ ]));
      hosts = filter (h: elem (toLower h) served) protectedHosts;
      imported = caddyFastcgiImports 8 (v.extraConfig or "");
      via = lib.optionalString (imported != [ ])
        ", in the snippet ${concatStringsSep ", " imported} it imports from services.caddy.extraConfig";
    in optional (hosts != [ ]) {
      assertion = !(caddyFastcgi (v.extraConfig or "")) && imported == [ ];
      message = "services.caddy.virtualHosts.\"${name}\" serves ${concatStringsSep ", " hosts}, which pocketgate "
        + "protects, through FastCGI (php_fastcgi or transport fastcgi${via}), where a client's header spellings fold "
        + "into CGI variables beside the identity headers; pocketgate's Caddy wiring protects HTTP backends only: "
        + "serve the application over HTTP on loopback (e.g. php-fpm behind a local web server) and reverse_proxy to it";
    }) (attrNames caddyVhosts)
    ++ map (n: {
      assertion = wordClashes n == [ ];
      message = "services.pocketgate: the Caddy wiring strips every spelling of the identity header ${n} by its "
        + "word \"${stripWord n}\", which the request headers ${concatStringsSep ", " (wordClashes n)} contain, "
        + "so they would be stripped too; give the header a name whose longest word is distinctive "
        + "(e.g. X-Pocketgate-User)";
    }) (stripNames ++ [ assertionHeader ]);

  # A site of its own under a protected wildcard ("*.example.com") is matched
  # by the proxy before the wildcard site, so it gets no wiring.
  unwired = names: filter (n: let l = toLower n; in
      !(elem l (map toLower protectedHosts)) && !(elem l loginHosts) && !(hasPrefix "*." l)
      && lib.any (suffix: lib.hasSuffix suffix l) wildcardSuffixes)
    names;
  wildcardWarning = proxy: name: "services.${proxy}.virtualHosts.\"${name}\" falls under a protected wildcard "
    + "host but is a site of its own, which pocketgate's wiring does not reach: its requests are never checked; "
    + "add services.pocketgate.hosts.\"${name}\" (it may just name the wildcard's policy)";
in
{
  imports = [ ./traefik.nix ];

  # Every location of a protected virtual host gets the snippet's backend
  # lines (locationLines): NixOS's vhost and location submodules are extended
  # here, which the module system merges with nginx's own declarations.
  options.services.nginx.virtualHosts = mkOption {
    type = types.attrsOf (types.submodule ({ name, ... }: {
      options.locations = mkOption {
        type = types.attrsOf (types.submodule ({ config, ... }: {
          config.extraConfig = mkIf (nginxProtected name) (lib.mkAfter (locationLines config));
        }));
      };
    }));
  };

  options.services.pocketgate = {
    enable = mkEnableOption "pocketgate, the forward-auth sidecar for Pocket ID";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The pocketgate package (built from this repository).";
    };

    settings = mkOption {
      type = types.submodule { freeformType = types.attrsOf jsonValue; };
      default = { };
      example = literalExpression ''{ log_format = "json"; bearer.enabled = true; }'';
      description = ''
        pocketgate's configuration, every key as in pocketgate.toml (snake_case).
        The typed options below write into it; set here what they do not cover.
      '';
    };

    listen = mkOption {
      type = types.str;
      default = "127.0.0.1:4180";
      description = "Address pocketgate listens on (and the proxies ask).";
    };
    metricsListen = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "127.0.0.1:9180";
      description = ''
        A second address serving only /metrics and /readyz (`metrics_listen`),
        for a scraper that reaches pocketgate from elsewhere; the proxies'
        public site never forwards those paths. Applied at restart.
      '';
    };
    publicUrl = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "https://auth.example.com";
      description = "Where browsers reach /login, /callback and /logout.";
    };
    defaultPolicy = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Policy for hosts not listed in `hosts` (null: they are denied).";
    };
    trustedProxies = mkOption {
      type = types.nullOr strList;
      default = null;
      description = "Peers whose X-Forwarded-* are believed (null: pocketgate's default, loopback).";
    };

    oidc = {
      issuer = mkOption { type = types.nullOr types.str; default = null; description = "Pocket ID's URL (its APP_URL)."; };
      clientId = mkOption { type = types.nullOr types.str; default = null; description = "The OIDC client's ID."; };
      clientSecretFile = mkOption {
        type = types.nullOr (types.either types.path types.str);
        default = null;
        example = "/run/secrets/pocketgate-client-secret";
        description = "File holding the client secret, read by systemd at start (LoadCredential); never in the store.";
      };
    };

    session = {
      secretFile = mkOption {
        type = types.nullOr (types.either types.path types.str);
        default = null;
        example = "/run/secrets/pocketgate-session-secret";
        description = "File with the session secret(s) (`pocketgate gen-secret`), read by systemd at start.";
      };
      cookieDomain = mkOption { type = types.nullOr types.str; default = null; description = "Parent domain of every protected host."; };
      lifetime = mkOption { type = types.nullOr types.str; default = null; example = "12h"; description = "Session lifetime."; };
      store = mkOption { type = types.nullOr (types.enum [ "embedded" "cookie" "redis" ]); default = null; description = "Session store (pocketgate's default: embedded, in the state directory)."; };
      redisUrl = mkOption { type = types.nullOr types.str; default = null; description = "Redis URL for store = redis (a password belongs in environmentFile)."; };
      refreshInterval = mkOption { type = types.nullOr types.str; default = null; example = "5m"; description = "How often the identity is refreshed at the provider (\"off\": never)."; };
      idleTimeout = mkOption { type = types.nullOr types.str; default = null; example = "2h"; description = "A session unused this long ends (needs store embedded or redis)."; };
    };

    assertion = {
      enable = mkEnableOption "the signed identity assertion header for backends";
      keyFile = mkOption {
        type = types.nullOr (types.either types.path types.str);
        default = null;
        description = "P-256 PEM key file (LoadCredential). Unset: a key generated once in the state directory.";
      };
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/pocketgate.env";
      description = "systemd EnvironmentFile, e.g. POCKETGATE_OIDC__CLIENT_SECRET or POCKETGATE_SESSION__REDIS_URL.";
    };

    policies = mkOption {
      type = types.attrsOf (types.submodule policyOptions);
      default = { };
      description = "Named policies (groups, users, networks).";
    };

    hosts = mkOption {
      type = types.attrsOf (types.submodule hostOptions);
      default = { };
      description = "Protected hosts; any module may add one (exact name or \"*.example.com\").";
    };

    caddy.enable = mkEnableOption "the forward-auth wiring in services.caddy for every host";
    nginx.enable = mkEnableOption "the auth_request wiring in services.nginx for every host";

    configFile = mkOption {
      type = types.unspecified;
      readOnly = true;
      description = "The configuration file the service runs, after `pocketgate check --offline` passed it.";
    };
  };

  config = mkMerge [
    {
      # Typed options -> keys. A key set both here and in `settings` is a
      # conflict the module system reports with both places.
      services.pocketgate.settings = mkMerge [
        {
          listen = cfg.listen;
          hosts = mapAttrsToList hostKeys cfg.hosts;
          policies = mapAttrs (_: policyKeys) cfg.policies;
        }
        (clean {
          metrics_listen = cfg.metricsListen;
          public_url = cfg.publicUrl;
          default_policy = cfg.defaultPolicy;
        })
        # [] is a choice (trust no proxy), not "unset".
        (optionalAttrs (cfg.trustedProxies != null) { trusted_proxies = cfg.trustedProxies; })
        { oidc = clean {
            inherit (cfg.oidc) issuer;
            client_id = cfg.oidc.clientId;
            client_secret_file = if cfg.oidc.clientSecretFile != null then "${credentialsDir}/client_secret" else null;
          }; }
        { session = clean {
            secret_file = if cfg.session.secretFile != null then "${credentialsDir}/session_secret" else null;
            cookie_domain = cfg.session.cookieDomain;
            inherit (cfg.session) lifetime store;
            redis_url = cfg.session.redisUrl;
            refresh_interval = cfg.session.refreshInterval;
            idle_timeout = cfg.session.idleTimeout;
          } // { state_dir = mkDefault stateDir; }; }
        (mkIf cfg.assertion.enable { assertion = clean {
          header = mkDefault "X-Pocketgate-Assertion";
          key_file = if cfg.assertion.keyFile != null then "${credentialsDir}/assertion_key" else null;
        }; })
      ];
      services.pocketgate.configFile = checkedFile;
    }

    (mkIf cfg.enable {
      assertions = [
        (inlineSecret [ "oidc" "client_secret" ] "set services.pocketgate.oidc.clientSecretFile (or POCKETGATE_OIDC__CLIENT_SECRET in environmentFile)")
        (inlineSecret [ "session" "secret" ] "set services.pocketgate.session.secretFile (or POCKETGATE_SESSION__SECRET in environmentFile)")
        {
          assertion = redisUrl == null || !(redisPassword redisUrl);
          message = "services.pocketgate.session.redisUrl carries a password, which would end up in the world-readable "
            + "Nix store; put POCKETGATE_SESSION__REDIS_URL in services.pocketgate.environmentFile instead";
        }
        (storePath "oidc.clientSecretFile" cfg.oidc.clientSecretFile)
        (storePath "session.secretFile" cfg.session.secretFile)
        (storePath "assertion.keyFile" cfg.assertion.keyFile)
        (storePath "environmentFile" cfg.environmentFile)
        (fileKey [ "oidc" "client_secret_file" ] "oidc.clientSecretFile")
        (fileKey [ "session" "secret_file" ] "session.secretFile")
        (fileKey [ "assertion" "key_file" ] "assertion.keyFile")
        (policyCheck "services.pocketgate.defaultPolicy" (final.default_policy or null))
        {
          assertion = duplicateHosts == [ ];
          message = "services.pocketgate: host ${concatStringsSep ", " duplicateHosts} is defined twice "
            + "(host names compare case-insensitively; settings.hosts and hosts together)";
        }
      ] ++ hostPolicyChecks
        ++ optionals cfg.nginx.enable nginxChecks
        ++ optionals cfg.caddy.enable caddyChecks;

      warnings =
        optionals cfg.caddy.enable (map (wildcardWarning "caddy")
          (unwired (lib.unique (concatMap (v: [ v.hostName ] ++ (v.serverAliases or [ ]))
            (attrValues config.services.caddy.virtualHosts)))))
        ++ optionals cfg.nginx.enable (map (wildcardWarning "nginx")
          (unwired (lib.unique (concatMap (n: let v = nginxVhosts.${n}; in
            [ (if (v.serverName or null) != null then v.serverName else n) ] ++ (v.serverAliases or [ ]))
            (attrNames nginxVhosts)))))
        ++ optionals cfg.caddy.enable (concatMap (n: map (defaultOnlyWarning "caddy" "services.caddy.virtualHosts.\"${n}\"")
            (defaultOnly [ (caddyVhosts.${n}.hostName or n) ]))
          (attrNames caddyVhosts))
        ++ optionals cfg.nginx.enable (concatMap (n: let v = nginxVhosts.${n}; in
            map (defaultOnlyWarning "nginx" "services.nginx.virtualHosts.\"${n}\"")
              (defaultOnly [ (if (v.serverName or null) != null then v.serverName else n) ]))
          (attrNames nginxVhosts));

      environment.etc."pocketgate/pocketgate.json".source = checkedFile;

      systemd.services.pocketgate = {
        description = "pocketgate forward-auth for Pocket ID";
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ];
        # A changed configuration is reloaded (SIGHUP, validated first); the
        # keys pocketgate applies only at start restart it.
        reloadTriggers = [ checkedFile ];
        restartIfChanged = true;
        restartTriggers = [ (builtins.toJSON {
          inherit listen;
          metrics_listen = final.metrics_listen or null;
          session = lib.getAttrs (lib.intersectLists [ "store" "state_dir" "redis_url" ] (attrNames (final.session or { }))) (final.session or { });
          log = lib.getAttrs (lib.intersectLists [ "log_level" "log_format" ] (attrNames final)) final;
        }) ];
        serviceConfig = {
          ExecStartPre = "${cfg.package}/bin/pocketgate check -c ${configPath}";
          ExecStart = "${cfg.package}/bin/pocketgate serve -c ${configPath}";
          ExecReload = [
            "${cfg.package}/bin/pocketgate check -c ${configPath}"
            "${pkgs.coreutils}/bin/kill -HUP $MAINPID"
          ];
          Restart = "on-failure";
          RestartSec = "2s";
          LoadCredential = mapAttrsToList (id: file: "${id}:${toString file}") credentials;
          EnvironmentFile = mkIf (cfg.environmentFile != null) cfg.environmentFile;

          DynamicUser = true;
          StateDirectory = "pocketgate";
          StateDirectoryMode = "0700";
          WorkingDirectory = stateDir;
          # A state_dir set elsewhere must stay writable under ProtectSystem=strict.
          ReadWritePaths = optional (stateDirSetting != stateDir) stateDirSetting;
          UMask = "0077";

          # Only a port below 1024 needs a capability (and a user namespace
          # would take it away again).
          AmbientCapabilities = if lowPort then [ "CAP_NET_BIND_SERVICE" ] else "";
          CapabilityBoundingSet = if lowPort then [ "CAP_NET_BIND_SERVICE" ] else "";
          PrivateUsers = !lowPort;
          NoNewPrivileges = true;
          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          ProtectClock = true;
          ProtectHostname = true;
          ProtectKernelLogs = true;
          ProtectKernelModules = true;
          ProtectKernelTunables = true;
          ProtectControlGroups = true;
          ProtectProc = "invisible";
          ProcSubset = "pid";
          RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          RemoveIPC = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
        };
      };
    })

    (mkIf (cfg.enable && cfg.caddy.enable) {
      services.caddy.extraConfig = "(pocketgate) {\n${caddySnippet}\n}\n";
      services.caddy.virtualHosts = lib.listToAttrs (
        map (url: lib.nameValuePair (urlAddress url) { extraConfig = caddyPublic; }) loginUrls
        ++ map (host: lib.nameValuePair host { extraConfig = mkBefore "import pocketgate"; }) protectedHosts
      );
    })

    (mkIf (cfg.enable && cfg.nginx.enable) {
      services.nginx.appendHttpConfig = nginxHttp;
      services.nginx.virtualHosts = lib.listToAttrs (
        map (url: lib.nameValuePair (urlHost url) { extraConfig = nginxPublic; }) loginUrls
        ++ map (host: lib.nameValuePair host { extraConfig = mkBefore nginxSnippet; }) protectedHosts
      );
    })
  ];
}
