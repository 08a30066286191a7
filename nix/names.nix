# What services.pocketgate's proxy wiring (module.nix for Caddy and nginx,
# traefik.nix for Traefik) knows of the configuration, and the helpers that
# read examples/: one place for the names every wiring puts in.
{ lib, final }:

let
  inherit (lib)
    optional optionals filter concatMap attrValues elem toLower hasPrefix hasInfix replaceStrings splitString;
in
rec {
  # --- what the proxies need to know ------------------------------------------
  listen = final.listen or "127.0.0.1:4180";
  # Where the proxies reach it: a wildcard listen address is asked on loopback.
  target =
    if hasPrefix "0.0.0.0:" listen then "127.0.0.1:" + lib.removePrefix "0.0.0.0:" listen
    else if hasPrefix "[::]:" listen then "[::1]:" + lib.removePrefix "[::]:" listen
    else listen;
  settingsHosts = final.hosts or [ ];
  globalHeaders = {
    user = "X-Remote-User"; email = "X-Remote-Email"; name = "X-Remote-Name"; groups = "X-Remote-Groups";
  } // (final.headers or { });
  globalNames = map (f: globalHeaders.${f}) [ "user" "email" "name" "groups" ];
  assertionHeader = (final.assertion or { }).header or "X-Pocketgate-Assertion";
  uniqueCi = names: lib.foldl' (acc: n: if elem (toLower n) (map toLower acc) then acc else acc ++ [ n ]) [ ] names;
  hostHeaderNames = concatMap (h: attrValues (h.headers or { })) settingsHosts;
  # Names a host uses besides the global four and the assertion: stripped and
  # copied on every protected site (one list, as the examples explain).
  extraNames = filter
    (n: !(elem (toLower n) (map toLower (globalNames ++ [ assertionHeader ]))))
    (uniqueCi hostHeaderNames);
  urlHost = url: builtins.head (splitString ":" (lib.removePrefix "http://" (lib.removePrefix "https://" (lib.removeSuffix "/" url))));
  loginUrls = optional (final ? public_url) final.public_url
    ++ map (d: d.public_url) ((final.session or { }).domains or [ ]);
  protectedHosts = map (h: h.host) settingsHosts;

  # --- the examples, with this configuration's names put in --------------------
  examples = ../examples;
  # `replace` insists that the example still holds what it replaces, so an
  # edited example fails evaluation here instead of generating something else.
  replace = file: from: to: text:
    if hasInfix from text then replaceStrings [ from ] [ to ] text
    else throw "services.pocketgate: ${file} no longer contains ${builtins.toJSON from}; nix/module.nix must follow the example";
  between = file: start: end: text:
    let
      after = splitString start text;
      rest = if builtins.length after == 2 then builtins.elemAt after 1
        else throw "services.pocketgate: ${file} must contain ${builtins.toJSON start} exactly once";
      parts = splitString end rest;
    in if builtins.length parts >= 2 then builtins.head parts
       else throw "services.pocketgate: ${file} has no ${builtins.toJSON end} after ${builtins.toJSON start}";

  # --- which sites the wiring reaches ------------------------------------------
  # Protected wildcard hosts ("*.example.com"), as name suffixes.
  wildcardSuffixes = map (h: lib.removePrefix "*" (toLower h)) (filter (hasPrefix "*.") protectedHosts);
  loginHosts = map (u: toLower (urlHost u)) loginUrls;
  protectsName = h: elem h (map toLower protectedHosts) || lib.any (suffix: lib.hasSuffix suffix h) wildcardSuffixes;
  # A site no `hosts` entry names is not wired at all, so defaultPolicy (which
  # decides only for requests that ask pocketgate) never applies to it. Sites
  # under a protected wildcard have their own warning (module.nix); pocketgate's
  # own public site is never wired.
  defaultOnly = names: optionals ((final.default_policy or null) != null)
    (filter (n: let l = toLower (urlHost n); in !(protectsName l) && !(elem l loginHosts)) names);
  defaultOnlyWarning = proxy: where: host: "${where} is not wired by services.pocketgate.${proxy}.enable: "
    + "no services.pocketgate.hosts entry names ${host}, and the wiring goes only on the hosts listed there, so "
    + "defaultPolicy (\"${final.default_policy}\") never applies to it and its requests reach the backend unchecked; "
    + "add services.pocketgate.hosts.\"${host}\".policy = \"${final.default_policy}\"; (or another policy) to protect it";

  # A header name's words, lower case: X_Remote-User -> x remote user.
  nameWords = n: filter (w: builtins.isString w && w != "") (builtins.split "[^a-z0-9]+" (toLower n));
}
